"""Tests for longctx.checkpoint: roundtrip, retention, interval, errors, background failures, SIGTERM."""
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from longctx import checkpoint as ckpt_lib

META = {"data_step": 7, "seed": 3, "model": {"d_model": 8, "num_layers": 2}}


def _state(d=8, seed=0):
  """A small training state shaped like the trainer's: params, adamw state, key, step, memory."""
  k = jax.random.key(seed)
  params = {"embed": jax.random.normal(k, (16, d)), "layers": [{"w": jnp.ones((d, d)), "b": jnp.zeros(d)}]}
  opt = optax.adamw(1e-3).init(params)
  return {"params": params, "opt": opt, "rng": jax.random.key_data(jax.random.split(k)[0]),
          "step": jnp.asarray(5, jnp.int32), "memory": {"M": jnp.full((2, 4, d), 0.5, jnp.float32),
                                                    "z": jnp.arange(2 * d, dtype=jnp.float32).reshape(2, d)}}


def _fill(ck, steps, **kw):
  st = _state()
  return [s for s in steps if ck.save(s, st, {**META, "data_step": s}, **kw)]


def test_roundtrip(tmp_path):
  st = _state()
  with ckpt_lib.Checkpointer(tmp_path / "ckpt") as ck:
    assert ck.save(0, st, META)
    ck.wait()
  with ckpt_lib.Checkpointer(tmp_path / "ckpt") as ck:  # a fresh manager, as after a restart
    assert ck.latest_step() == 0
    got, meta = ck.restore(0, jax.eval_shape(lambda: st))
  assert meta == META
  assert jax.tree.structure(got) == jax.tree.structure(st)
  assert isinstance(got["opt"][0], optax.ScaleByAdamState)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(st)):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  key = jax.random.wrap_key_data(got["rng"])
  np.testing.assert_array_equal(jax.random.normal(key, (3,)),
                                jax.random.normal(jax.random.wrap_key_data(st["rng"]), (3,)))


def test_max_to_keep_and_latest(tmp_path):
  with ckpt_lib.Checkpointer(tmp_path, max_to_keep=2) as ck:
    assert _fill(ck, range(4)) == [0, 1, 2, 3]
    ck.wait()
    assert ck.all_steps() == [2, 3]
    _, meta = ck.restore(None, jax.eval_shape(_state))
    assert meta["data_step"] == 3


def test_interval_and_force(tmp_path):
  with ckpt_lib.Checkpointer(tmp_path, save_interval_steps=2, max_to_keep=None) as ck:
    assert _fill(ck, range(6)) == [0, 2, 4]
    assert ck.save(5, _state(), META, force=True)  # off-interval final save
    assert not ck.save(5, _state(), META, force=True)  # already on disk: skipped, no error
    ck.wait()
    assert ck.all_steps() == [0, 2, 4, 5]
    assert ck.latest_step() == 5


def test_interval_ignores_first_step_of_fresh_dir(tmp_path):
  """orbax's default InitialSavePolicy would save step 1 here; our policy honours the interval."""
  with ckpt_lib.Checkpointer(tmp_path, save_interval_steps=3) as ck:
    assert _fill(ck, range(1, 5)) == [3]


def test_restore_missing(tmp_path):
  with ckpt_lib.Checkpointer(tmp_path) as ck:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
      ck.restore(None, jax.eval_shape(_state))
    _fill(ck, [0])
    ck.wait()
    with pytest.raises(FileNotFoundError, match=r"step 9 .*steps: \[0\]"):
      ck.restore(9, jax.eval_shape(_state))


def test_shape_mismatch_names_leaf_and_shapes(tmp_path):
  with ckpt_lib.Checkpointer(tmp_path / "run") as ck:
    _fill(ck, [0])
  with ckpt_lib.Checkpointer(tmp_path / "run") as ck:
    with pytest.raises(ValueError) as e:
      ck.restore(None, jax.eval_shape(lambda: _state(d=4)))
  msg = str(e.value)
  assert str(tmp_path / "run" / "0") in msg
  # Leaves are visited in pytree order (sorted dict keys), so memory/M comes first.
  assert "leaf 'memory/M' has shape (2, 4, 8) in the checkpoint but (2, 4, 4) is expected" in msg
  assert "11 leaves differ" in msg


def test_single_leaf_mismatch(tmp_path):
  """One differing leaf deep in the optimizer state (namedtuple field) is found and named."""
  with ckpt_lib.Checkpointer(tmp_path) as ck:
    _fill(ck, [0])
    ck.wait()
    abstract = jax.eval_shape(_state)
    nu = abstract["opt"][0].nu
    nu["embed"] = jax.ShapeDtypeStruct((32, 8), jnp.float32)
    with pytest.raises(ValueError, match=r"leaf 'opt/0/nu/embed' has shape \(16, 8\) in the "
                       r"checkpoint but \(32, 8\) is expected \(1 leaves differ\)"):
      ck.restore(0, abstract)


def test_a_restartable_item_of_another_structure_comes_back_none(tmp_path):
  """restartable=('memory',): a memory of another tree or shape is not read (None) while the rest
  is restored exactly; a matching memory is restored; other items must still match."""
  st = _state()
  with ckpt_lib.Checkpointer(tmp_path) as ck:
    ck.save(0, st, META)
    ck.wait()
    for change in ("extra", "shape"):
      abstract = jax.eval_shape(_state)
      if change == "extra":
        abstract["memory"]["key"] = jax.ShapeDtypeStruct((2, 2), jnp.uint32)
      else:
        abstract["memory"]["M"] = jax.ShapeDtypeStruct((4, 4, 8), jnp.float32)
      got, meta = ck.restore(0, abstract, restartable=("memory",))
      assert got["memory"] is None and meta == META
      assert isinstance(got["opt"][0], optax.ScaleByAdamState)
      rest = {k: v for k, v in st.items() if k != "memory"}
      assert jax.tree.structure(rest) == jax.tree.structure({k: got[k] for k in rest})
      for a, b in zip(jax.tree.leaves({k: got[k] for k in rest}), jax.tree.leaves(rest)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    got, _ = ck.restore(0, jax.eval_shape(_state), restartable=("memory",))
    np.testing.assert_array_equal(np.asarray(got["memory"]["M"]), np.asarray(st["memory"]["M"]))
    abstract = jax.eval_shape(lambda: _state(d=4))
    with pytest.raises(ValueError, match="does not match the model"):
      ck.restore(0, abstract, restartable=("memory",))


def test_structure_mismatch_is_clear(tmp_path):
  with ckpt_lib.Checkpointer(tmp_path) as ck:
    _fill(ck, [0])
    ck.wait()
    abstract = jax.eval_shape(_state)
    abstract["memory"]["extra"] = jax.ShapeDtypeStruct((3,), jnp.float32)
    del abstract["rng"]
    with pytest.raises(ValueError) as e:
      ck.restore(0, abstract)
  msg = str(e.value)
  assert str(tmp_path / "0") in msg and "different state structure" in msg
  assert "memory/extra" in msg and "'rng'" in msg


def test_failed_background_save_raises_on_wait(tmp_path, monkeypatch):
  class _Boom:
    def result(self, timeout=None):
      raise OSError("disk full")

  orig = ocp.StandardCheckpointHandler.async_save

  async def failing(self, *a, **kw):
    return list(await orig(self, *a, **kw) or []) + [_Boom()]

  monkeypatch.setattr(ocp.StandardCheckpointHandler, "async_save", failing)
  ck = ckpt_lib.Checkpointer(tmp_path)
  assert ck.save(0, _state(), META)  # returns before the write fails
  with pytest.raises(OSError, match="disk full"):
    ck.wait()
  ck.close()
  assert ck.latest_step() is None  # the failed step is not reported as saved


def test_non_json_meta_fails_fast(tmp_path):
  with ckpt_lib.Checkpointer(tmp_path) as ck:
    with pytest.raises(TypeError):
      ck.save(0, _state(), {"x": object()})


def test_sigterm_sets_flag(tmp_path):
  previous = ckpt_lib.install_sigterm_handler()
  try:
    assert not ckpt_lib.should_stop()
    with ckpt_lib.Checkpointer(tmp_path) as ck:
      assert not ck.should_stop(0)
      os.kill(os.getpid(), signal.SIGTERM)
      assert ckpt_lib.should_stop() and ck.should_stop(1)
      assert ck.reached_preemption(1) is False  # single process: no JAX preemption service
  finally:
    signal.signal(signal.SIGTERM, previous)
