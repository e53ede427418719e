"""Checkpoint averaging (longctx.checkpoint.average_checkpoints, scripts/average_checkpoints.py):
the params written are the element-wise mean of the sources' (checked against numpy on the
states that were saved), the rest of the state and the data position are the last source's, the
result restores onto the trainer's abstract state, and bad sources stop with a clear message."""
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from longctx import checkpoint as ckpt_lib

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_ROOT, "scripts"))
import average_checkpoints as average_script  # noqa: E402


def _state(seed, d=8):
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  params = {"embed": jax.random.normal(k1, (16, d)),
            "layers": [{"w": jax.random.normal(k2, (d, d)), "b": jax.random.normal(k3, (d,))}]}
  opt = optax.adamw(1e-3).init(params)
  opt = jax.tree.map(lambda x: x + seed if jnp.issubdtype(x.dtype, jnp.floating) else x, opt)
  return {"params": params, "opt": opt, "rng": jax.random.key_data(k3),
          "step": jnp.asarray(seed, jnp.int32), "memory": {"M": jnp.full((2, d), float(seed))}}


def _save(directory, step, state, data_step=None):
  with ckpt_lib.Checkpointer(directory, async_save=False) as ck:
    assert ck.save(step, state, {"task": "passkey", "data_step": data_step or step}, force=True)


def test_the_average_is_the_mean_of_the_params_and_the_rest_is_the_last_source(tmp_path):
  states = {100: _state(1), 200: _state(2), 300: _state(3)}
  for step, st in states.items():
    _save(tmp_path / "run" / "checkpoints", step, st)
  _save(tmp_path / "copy" / "checkpoints", 400, _state(4))   # another workdir, one trajectory
  sources = [(tmp_path / "run" / "checkpoints", 100), (tmp_path / "run" / "checkpoints", 300),
             (tmp_path / "copy" / "checkpoints", None)]
  step = ckpt_lib.average_checkpoints(sources, tmp_path / "avg" / "checkpoints")
  assert step == 400
  with ckpt_lib.Checkpointer(tmp_path / "avg" / "checkpoints") as ck:
    got, meta, got_step = ck.restore_numpy(None)
  assert got_step == 400 and ck_steps(tmp_path / "avg" / "checkpoints") == [400]
  used = [states[100], states[300], _state(4)]
  for path, leaf in ckpt_lib.flat_leaves(got["params"]).items():
    want = np.mean([np.asarray(ckpt_lib.flat_leaves(s["params"])[path]) for s in used], axis=0)
    np.testing.assert_allclose(leaf, want, rtol=1e-6, atol=1e-7, err_msg=path)
    assert leaf.dtype == np.float32
  last = _state(4)
  for part in ("opt", "rng", "step", "memory"):
    for path, leaf in ckpt_lib.flat_leaves(got[part]).items():
      np.testing.assert_array_equal(leaf, np.asarray(ckpt_lib.flat_leaves(last[part])[path]), err_msg=path)
  assert meta["data_step"] == 400 and meta["task"] == "passkey"
  assert [s.rsplit(":", 1)[1] for s in meta["averaged_from"]] == ["100", "300", "400"]
  # A trainer restores it onto its own abstract state (shapes and dtypes of a fresh state).
  with ckpt_lib.Checkpointer(tmp_path / "avg" / "checkpoints") as ck:
    restored, _ = ck.restore(None, jax.eval_shape(lambda: _state(0)))
  np.testing.assert_allclose(restored["params"]["embed"], got["params"]["embed"])


def ck_steps(directory):
  with ckpt_lib.Checkpointer(directory) as ck:
    return ck.all_steps()


def test_bad_sources_stop_with_a_clear_message(tmp_path):
  _save(tmp_path / "a", 10, _state(1))
  _save(tmp_path / "b", 10, _state(2, d=4))                 # another model shape
  with pytest.raises(ValueError, match="at least two"):
    ckpt_lib.average_checkpoints([(tmp_path / "a", None)], tmp_path / "out")
  with pytest.raises(ValueError, match=r"holds other params than .*b:10"):
    ckpt_lib.average_checkpoints([(tmp_path / "a", 10), (tmp_path / "b", 10)], tmp_path / "out")
  with pytest.raises(FileNotFoundError, match="no checkpoint for step 20"):
    ckpt_lib.average_checkpoints([(tmp_path / "a", 10), (tmp_path / "a", 20)], tmp_path / "out")
  with pytest.raises(FileNotFoundError, match="missing does not exist"):
    ckpt_lib.average_checkpoints([(tmp_path / "a", 10), (tmp_path / "missing", None)], tmp_path / "out")
  assert not (tmp_path / "missing").exists()
  _save(tmp_path / "full", 5, _state(3))
  with pytest.raises(ValueError, match="already holds checkpoints"):
    ckpt_lib.average_checkpoints([(tmp_path / "a", 10), (tmp_path / "a", 10)], tmp_path / "full")


def test_the_script_reads_workdir_step_sources_and_copies_the_config(tmp_path):
  _save(tmp_path / "run" / "checkpoints", 50, _state(1))
  _save(tmp_path / "run" / "checkpoints", 60, _state(2))
  (tmp_path / "run" / "config.json").write_text(json.dumps({"model": {"d_model": 8}}))
  out = tmp_path / "avg"
  step = average_script.main([f"--out={out}", f"{tmp_path / 'run'}:50", str(tmp_path / "run")])
  assert step == 60
  assert json.loads((out / "config.json").read_text()) == {"model": {"d_model": 8}}
  with ckpt_lib.Checkpointer(out / "checkpoints") as ck:
    params, _ = ck.restore_item(None)
  np.testing.assert_allclose(params["embed"], (np.asarray(_state(1)["params"]["embed"])
                                               + np.asarray(_state(2)["params"]["embed"])) / 2, rtol=1e-6)
  with pytest.raises(FileNotFoundError, match="nowhere.*not a directory"):
    average_script.main([f"--out={tmp_path / 'x'}", str(tmp_path / "nowhere"), str(tmp_path / "run")])
