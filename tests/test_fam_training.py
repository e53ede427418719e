"""FAM's training tricks (App. B.2) in the train step: random position offset (RPO) and random state
passing (RSP), both drawn from the train state's rng (explicit, checkpointed)."""
import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import stop_after
from longctx import config as config_lib
from longctx import train
from longctx.data import sources
from longctx.models import scan

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs", "passkey"))
import fam as fam_config  # noqa: E402


def test_random_position_offset_distribution():
  theta = 10000.0
  offsets = np.asarray(train.random_position_offset(jax.random.key(0), 20000, theta))
  assert offsets.dtype == np.int32
  zero = offsets == 0
  assert abs(zero.mean() - 0.5) < 0.02                       # zero with probability 1/2
  assert offsets.min() >= 0 and offsets.max() < 2 * np.pi * theta
  nonzero = offsets[~zero] / (2 * np.pi * theta)             # uniform over the wavelength
  assert abs(nonzero.mean() - 0.5) < 0.02 and nonzero.max() > 0.99
  np.testing.assert_array_equal(offsets, train.random_position_offset(jax.random.key(0), 20000,
                                                                      theta))


def _tiny_cfg(**train_overrides):
  cfg = config_lib.base_config()
  cfg.model.update(attention="fam", vocab_size=256, d_model=16, num_heads=2, num_layers=1,
                   mlp_dim=32, block_len=64, remat_policy="none")
  cfg.model.fam.update(fam_len=2, mem_blocks=1)
  cfg.data.update(seq_len=256, batch_size=2, key_len=2, other_weight=0.1)
  cfg.train.update(steps=3, warmup_steps=0, lr=1e-2)
  cfg.train.update(train_overrides)
  return config_lib.finalize(cfg)


def _steps(cfg, n):
  graphdef, params, model = train.build_model(cfg)
  tx, schedule = train.make_optimizer(cfg)
  state = train.init_state(cfg, params, model, tx)
  step_fn = jax.jit(functools.partial(train.train_step, graphdef=graphdef, model_cfg=cfg.model,
                                      tx=tx, schedule=schedule, train_cfg=cfg.train))
  source = sources.make_train_source(cfg)
  states, metrics = [state], []
  for i in range(n):
    state, m = step_fn(state, source.batch(i))
    states.append(state)
    metrics.append(m)
  return graphdef, model, source, states, metrics


def test_state_passing_starts_from_element_0s_fam_of_the_last_step():
  """p = 1: step 0 starts from the prompt (nothing saved yet), step 1 from the FAM that batch
  element 0 ended step 0 with; p = 0 never passes state."""
  cfg = _tiny_cfg(state_passing_prob=1.0)
  graphdef, model, source, states, metrics = _steps(cfg, 2)
  loss = lambda state, memory, i: float(scan.mean_loss(state["params"], graphdef, memory,
                                                       source.batch(i), cfg.model)[0])
  fresh = model.init_memory(2)
  np.testing.assert_allclose(float(metrics[0]["loss"]), loss(states[0], fresh, 0), rtol=1e-5)
  passed = model.pass_state(states[1]["memory"], jnp.array(True))
  np.testing.assert_allclose(float(metrics[1]["loss"]), loss(states[1], passed, 1), rtol=1e-5)
  assert abs(loss(states[1], passed, 1) - loss(states[1], fresh, 1)) > 1e-4
  # The state rng moves every step (it is part of the checkpointed state).
  assert not np.array_equal(states[0]["rng"], states[1]["rng"])
  # p = 0, with RPO on: no state passing. RoPE is relative, so RPO's per-example shift of every
  # position (FAM's included) leaves the loss unchanged up to the rounding of large angles.
  cfg_off = _tiny_cfg(state_passing_prob=0.0, random_position_offset=True)
  _, _, _, states_off, metrics_off = _steps(cfg_off, 2)
  np.testing.assert_allclose(float(metrics_off[1]["loss"]), loss(states_off[1], fresh, 1),
                             rtol=1e-4)


def test_state_passing_needs_fam():
  cfg = config_lib.base_config()
  cfg.train.state_passing_prob = 0.8
  with pytest.raises(ValueError, match=r"train\.state_passing_prob"):
    config_lib.finalize(cfg)


@pytest.mark.slow
def test_fam_smoke_run_resumes_exactly_with_rpo_and_rsp(tmp_path, monkeypatch):
  """The tricks' randomness comes from the checkpointed state: kill + resume == uninterrupted."""
  cfg = fam_config.get_config("smoke")
  cfg.unlock()
  cfg.train.update(steps=4, log_every=1)
  cfg.checkpoint.update(every_steps=2, async_save=False)
  cfg.evals.run = ()
  cfg.lock()
  uninterrupted = train.train_and_evaluate(cfg, str(tmp_path / "a"))
  stop_after(monkeypatch, 2)
  train.train_and_evaluate(cfg, str(tmp_path / "b"))
  monkeypatch.undo()
  resumed = train.train_and_evaluate(cfg, str(tmp_path / "b"))
  jax.tree.map(np.testing.assert_array_equal, uninterrupted["params"], resumed["params"])
