"""Protocol invariants of the memorizing, compressive and rmt decoders (2 layers, 4 blocks):
scan == per-block Python loop (test_scan_driver's float64 reference), one call == several calls
with the carried memory, no token sees the future, examples do not leak, the auxiliary loss
reaches the training loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.models import scan
from longctx.models.decoder import Decoder
from test_scan_driver import B, L, T, assert_trees_close, jit_run_blocks, loop_reference, make_batch

VARIANTS = {
    # kNN memory on layer 1 only (layer 0 is XL); capacity 2 blocks, so the FIFO wraps.
    "memorizing": dict(attention="memorizing", memorizing=dict(capacity=2 * L, top_k=3, layers=(1,))),
    "memorizing_all": dict(attention="memorizing", memorizing=dict(capacity=3 * L, top_k=5)),
    "compressive": dict(attention="compressive", compressive=dict(compressed_len=L // 2, rate=2)),
    "rmt": dict(attention="rmt", rmt=dict(num_tokens=2)),
}


def build(tiny_cfg, variant, **overrides):
  cfg = tiny_cfg(**dict(dict(num_layers=2, block_len=L), **VARIANTS[variant], **overrides))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  return cfg, model, graphdef, params


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_scan_equals_python_loop_and_chunked_calls(tiny_cfg, variant):
  cfg, model, graphdef, params = build(tiny_cfg, variant, remat_policy="nothing_saveable")
  warm = make_batch(1, cfg.vocab_size, reset=(True, True))
  memory0, _, _ = loop_reference(graphdef, params, model.init_memory(B), warm, L)
  batch = make_batch(2, cfg.vocab_size)  # example 0 reset, example 1 carries the warm memory
  ref_memory, ref_loss, ref_correct = loop_reference(graphdef, params, memory0, batch, L)
  run = jit_run_blocks(graphdef, cfg)
  memory, outs = run(params, memory0, batch)
  np.testing.assert_allclose(np.asarray(outs["loss"]), ref_loss, atol=1e-5, rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(outs["correct"]), ref_correct)
  assert_trees_close(memory, ref_memory, atol=1e-5)
  # Two calls of half the sequence with the carried memory give the same.
  half = T // 2
  first = {k: (v[:, :half] if np.ndim(v) == 2 else v) for k, v in batch.items()}
  second = {k: (v[:, half:] if np.ndim(v) == 2 else np.zeros_like(v)) for k, v in batch.items()}
  mem_half, outs1 = run(params, memory0, first)
  mem_end, outs2 = run(params, mem_half, second)
  np.testing.assert_allclose(np.concatenate([outs1["loss"], outs2["loss"]], 1), ref_loss,
                             atol=1e-5, rtol=1e-5)
  assert_trees_close(mem_end, ref_memory, atol=1e-5)
  # The carried memory changes example 1 (so the reset of example 0 is observable).
  _, fresh_loss, _ = loop_reference(graphdef, params, model.init_memory(B), batch, L)
  np.testing.assert_allclose(ref_loss[0], fresh_loss[0], atol=1e-6)
  assert np.max(np.abs(ref_loss[1] - fresh_loss[1])) > 1e-4


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_future_and_no_leak_between_examples(tiny_cfg, variant):
  cfg, model, graphdef, params = build(tiny_cfg, variant)
  run = jit_run_blocks(graphdef, cfg)
  batch = make_batch(3, cfg.vocab_size, reset=(True, True))
  memory, outs = run(params, model.init_memory(B), batch)
  for t in (0, L - 1, L + 1, T - 1):
    changed = dict(batch, inputs=batch["inputs"].copy())
    changed["inputs"][0, t] = (changed["inputs"][0, t] + 1) % cfg.vocab_size
    mem2, outs2 = run(params, model.init_memory(B), changed)
    np.testing.assert_array_equal(np.asarray(outs2["loss"][0, :t]), np.asarray(outs["loss"][0, :t]))
    assert abs(float(outs2["loss"][0, t] - outs["loss"][0, t])) > 1e-6, t
    # Example 1 is untouched, memory included.
    np.testing.assert_array_equal(np.asarray(outs2["loss"][1]), np.asarray(outs["loss"][1]))
    jax.tree.map(lambda a, c: np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(c[1])),
                 memory, mem2)


def test_aux_loss_is_added_to_the_training_loss(tiny_cfg):
  """mean_loss = weighted token loss + mean over (examples, blocks) of the summed layer aux losses;
  models without auxiliary losses report none."""
  cfg, model, graphdef, params = build(tiny_cfg, "compressive")
  batch = make_batch(4, cfg.vocab_size, reset=(True, True))
  loss, (_, outs) = scan.mean_loss(params, graphdef, model.init_memory(B), batch, cfg)
  token = np.sum(np.asarray(outs["loss"])) / np.sum(batch["weights"])
  aux = np.asarray(outs["aux_loss"])
  assert aux.shape == (B, T // L) and aux.max() > 0
  np.testing.assert_allclose(float(loss), token + aux.mean(), rtol=1e-6)
  cfg_xl, model_xl, graphdef_xl, params_xl = build(tiny_cfg, "rmt")
  _, (_, outs_rmt) = scan.mean_loss(params_xl, graphdef_xl, model_xl.init_memory(B), batch, cfg_xl)
  assert "aux_loss" not in outs_rmt
