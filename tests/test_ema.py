"""The parameters' moving average (train.ema_decay): after every step it follows the recurrence
ema <- d * ema + (1 - d) * params (checked against numpy on the per-step params), switching it
on at resume starts it from the restored params, switching it off drops it, and the evaluators
read the average. (A killed and resumed run ends with the same average: test_train.py.)"""
import jax
import numpy as np

from longctx import checkpoint as ckpt_lib
from longctx import optim, sharding, train
from longctx.data import sources
from test_train import _leaves, smoke_config


def test_the_average_follows_the_recurrence_from_the_initial_params():
  decay = 0.6
  cfg = smoke_config(steps=3, ema_decay=decay)
  mesh = sharding.make_mesh(cfg.mesh)
  graphdef, params, model = train.build_model(cfg)
  tx, schedule = optim.make_optimizer(cfg.train)
  state = train.init_state(cfg, params, model, tx)
  step, state_sh, batch_sh = train.compile_train_step(cfg, graphdef, state, mesh, tx, schedule)
  state = jax.device_put(state, state_sh)
  source = sources.make_train_source(cfg)
  want = _leaves(state["params"])                      # the average starts at the initial params
  for e, p in zip(_leaves(state["ema_params"]), want):
    np.testing.assert_array_equal(e, p)
  for i in range(3):
    state, _ = step(state, jax.device_put(source.batch(i), batch_sh))
    now = _leaves(state["params"])
    want = [decay * e + (1 - decay) * p for e, p in zip(want, now)]
    got = _leaves(state["ema_params"])
    for g, w, p in zip(got, want, now):
      np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
  # Not vacuous: the params moved, so the average differs from the last params.
  assert max(np.abs(g - p).max() for g, p in zip(got, now)) > 1e-5


def _every_step(steps, **overrides):
  cfg = smoke_config(steps=steps, **overrides)
  cfg.unlock()
  cfg.checkpoint.every_steps = 1
  cfg.checkpoint.keep = 10
  cfg.lock()
  return cfg


def test_switched_on_at_resume_it_starts_from_the_restored_params_and_off_it_is_dropped(
    tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  evaluated = []
  monkeypatch.setattr(train.eval_lib, "run_evaluators",
                      lambda cfg, graphdef, params, workdir: evaluated.append(params) or {})
  train.train_and_evaluate(_every_step(2), workdir)                 # no average in the checkpoint
  started = train.train_and_evaluate(_every_step(2, ema_decay=0.9), workdir)   # trains nothing
  for e, p in zip(_leaves(started["ema_params"]), _leaves(started["params"])):
    np.testing.assert_array_equal(e, p)
  decay = 0.75
  on = train.train_and_evaluate(_every_step(4, ema_decay=decay), workdir)
  with ckpt_lib.Checkpointer(f"{workdir}/checkpoints") as ck:
    p2, _ = ck.restore_item(2, "params")
    p3, _ = ck.restore_item(3, "params")
    assert "ema_params" not in ck._stored_tree(2) and "ema_params" in ck._stored_tree(4)
  # ema_2 = p_2, then ema_3 and ema_4 by the recurrence.
  want = [decay * (decay * a + (1 - decay) * b) + (1 - decay) * c for a, b, c in
          zip(_leaves(p2), _leaves(p3), _leaves(on["params"]))]
  for g, w in zip(_leaves(on["ema_params"]), want):
    np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
  # The evaluators read the average, not the last params (which differ from it).
  for e, g in zip(_leaves(evaluated[-1]), _leaves(on["ema_params"])):
    np.testing.assert_array_equal(e, g)
  assert any(not np.array_equal(g, p) for g, p in
             zip(_leaves(on["ema_params"]), _leaves(on["params"])))
  off = train.train_and_evaluate(_every_step(5), workdir)           # resumes without the average
  assert off["final_step"] == 5 and "ema_params" not in off
  with ckpt_lib.Checkpointer(f"{workdir}/checkpoints") as ck:
    assert "ema_params" not in ck._stored_tree(5)
  # An average of checkpoints carrying a moving average leaves it out (it evaluates its mean).
  ckpt_lib.average_checkpoints([(f"{workdir}/checkpoints", 3), (f"{workdir}/checkpoints", 4)],
                               tmp_path / "avg")
  with ckpt_lib.Checkpointer(tmp_path / "avg") as ck:
    assert set(ck._stored_tree(4)) == {"params", "opt_state", "step", "rng", "memory"}
