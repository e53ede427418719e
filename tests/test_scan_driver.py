"""The block-scan driver (longctx.models.scan) against an explicit per-block Python loop.

The loop calls the decoder on each block [B, L] with the carried memory and computes the weighted
cross-entropy and argmax correctness in float64 numpy, so neither lax.scan, jax.checkpoint nor
scan.token_outputs is in the reference.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.models import scan
from longctx.models.decoder import Decoder

B, L, NUM_BLOCKS = 2, 4, 4
T = L * NUM_BLOCKS

VARIANTS = {  # name -> model config overrides
    "infini": dict(attention="infini"),
    "infini_delta": dict(attention="infini", infini=dict(update_rule="linear_delta")),
    "bswa": dict(attention="bswa", bswa=dict(mem_blocks=2)),
    "xl": dict(attention="xl"),
    "full": dict(attention="full"),
    "fam": dict(attention="fam", fam=dict(fam_len=2, mem_blocks=1)),
}


def np_token_outputs(logits, targets, weights):
  """logits [B, T, V] -> weighted cross-entropy and argmax correctness, both [B, T], float64."""
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max(axis=-1, keepdims=True)
  log_z = np.log(np.exp(shifted).sum(axis=-1))
  b, t = targets.shape
  nll = np.empty((b, t))
  for bi in range(b):
    for ti in range(t):
      nll[bi, ti] = log_z[bi, ti] - shifted[bi, ti, targets[bi, ti]]
  return nll * weights, (logits.argmax(axis=-1) == targets).astype(np.float64)


@functools.partial(jax.jit, static_argnums=0)
def decoder_step(graphdef, params, tokens, memory, positions, reset):
  return nnx.merge(graphdef, params)(tokens, memory, positions=positions, reset=reset)


def loop_reference(graphdef, params, memory, batch, block_len):
  """Per-block Python loop: reset before the first block only. Returns (memory, loss, correct)."""
  inputs, positions = batch["inputs"], batch["positions"]
  b, t = inputs.shape
  logits = []
  for s in range(t // block_len):
    sl = slice(s * block_len, (s + 1) * block_len)
    reset = batch["reset"] if s == 0 else np.zeros((b,), bool)
    out, memory = decoder_step(graphdef, params, jnp.asarray(inputs[:, sl]), memory,
                               jnp.asarray(positions[:, sl]), jnp.asarray(reset))
    logits.append(np.asarray(out))
  loss, correct = np_token_outputs(np.concatenate(logits, axis=1), batch["targets"],
                                   batch["weights"])
  return memory, loss, correct


def make_batch(seed, vocab, t=T, reset=(True, False)):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, vocab, size=(B, t + 1)).astype(np.int32)
  return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
          "weights": (rng.random((B, t)) < 0.8).astype(np.float32),
          "positions": np.stack([np.arange(t) + 11, np.arange(t) + 3]).astype(np.int32),
          "reset": np.asarray(reset)}


def build(tiny_cfg, variant, **overrides):
  cfg = tiny_cfg(**dict(dict(num_layers=2, block_len=L), **VARIANTS[variant], **overrides))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  return cfg, model, graphdef, params


def jit_run_blocks(graphdef, cfg):
  return jax.jit(lambda params, memory, batch: scan.run_blocks(graphdef, params, memory, batch,
                                                               cfg))


@functools.lru_cache(maxsize=None)
def grad_setup(tiny_cfg, variant, **overrides):
  """1-layer model of `variant` and its jitted d mean_loss / d params, cached so tests that need
  the same configuration share one compilation. Returns (cfg, params, memory0, grad_fn)."""
  cfg, model, graphdef, params = build(tiny_cfg, variant, num_layers=1, **overrides)
  loss = lambda params, memory, batch: scan.mean_loss(params, graphdef, memory, batch, cfg)
  return cfg, params, model.init_memory(B), jax.jit(jax.grad(loss, has_aux=True))


def grads_of(tiny_cfg, variant, batch, remat_policy, bptt_blocks=0):
  _, params, memory, grad_fn = grad_setup(tiny_cfg, variant, remat_policy=remat_policy,
                                          bptt_blocks=bptt_blocks)
  return grad_fn(params, memory, batch)


def assert_trees_close(a, b, atol=1e-6, rtol=1e-5):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol,
                                                       rtol=rtol), a, b)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_scan_equals_python_loop(tiny_cfg, variant):
  """2 layers, 4 blocks, random 0/1 weights, per-example position offsets."""
  cfg, model, graphdef, params = build(tiny_cfg, variant, remat_policy="nothing_saveable")
  block_len = T if variant == "full" else L
  # A used memory to start from; example 0 is reset before the first block, example 1 carries on.
  warm = make_batch(1, cfg.vocab_size, reset=(True, True))
  memory0, _, _ = loop_reference(graphdef, params, model.init_memory(B), warm, block_len)
  batch = make_batch(2, cfg.vocab_size)
  ref_memory, ref_loss, ref_correct = loop_reference(graphdef, params, memory0, batch, block_len)
  memory, outs = jit_run_blocks(graphdef, cfg)(params, memory0, batch)
  assert outs["loss"].shape == (B, T) and outs["correct"].shape == (B, T)
  np.testing.assert_allclose(np.asarray(outs["loss"]), ref_loss, atol=1e-5, rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(outs["correct"]), ref_correct)
  assert_trees_close(memory, ref_memory, atol=1e-5)
  if variant != "full":  # the carried memory changes example 1 (so the reset test can fail)
    _, fresh_loss, _ = loop_reference(graphdef, params, model.init_memory(B), batch, block_len)
    np.testing.assert_allclose(ref_loss[0], fresh_loss[0], atol=1e-6)
    assert np.max(np.abs(ref_loss[1] - fresh_loss[1])) > 1e-4


def test_complete_batch_defaults_to_fresh_memory(tiny_cfg):
  """Without reset/positions/weights the driver starts from a reset memory at position 0."""
  cfg, model, graphdef, params = build(tiny_cfg, "infini")
  batch = make_batch(3, cfg.vocab_size, reset=(True, True))
  batch["weights"] = np.ones((B, T), np.float32)
  batch["positions"] = np.broadcast_to(np.arange(T, dtype=np.int32), (B, T))
  _, ref_loss, _ = loop_reference(graphdef, params, model.init_memory(B), batch, L)
  garbage = jax.tree.map(lambda m: jnp.full_like(m, 3.0), model.init_memory(B))
  bare = {"inputs": batch["inputs"], "targets": batch["targets"]}
  _, outs = jit_run_blocks(graphdef, cfg)(params, garbage, bare)
  np.testing.assert_allclose(np.asarray(outs["loss"]), ref_loss, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["infini", "bswa"])
def test_remat_policies_give_the_same_gradients(tiny_cfg, variant):
  batch = make_batch(4, 32)
  g_none, (_, outs_none) = grads_of(tiny_cfg, variant, batch, remat_policy="none")
  g_remat, (_, outs_remat) = grads_of(tiny_cfg, variant, batch, remat_policy="nothing_saveable")
  np.testing.assert_allclose(np.asarray(outs_none["loss"]), np.asarray(outs_remat["loss"]),
                             atol=1e-6)
  assert_trees_close(g_none, g_remat)
  assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(g_none)) > 1e-3


def _embedding_grad_of_one_block(tiny_cfg, variant, bptt_blocks, loss_block):
  """Gradient of the loss of block `loss_block` (weights zero elsewhere) w.r.t. the embedding rows
  of the tokens of block 0, which no other block uses. 1 layer, 4 blocks."""
  first = 8  # block 0 uses tokens 0..7 only; the other blocks tokens 8..31
  rng = np.random.default_rng(5)
  inputs = rng.integers(first, 32, size=(B, T)).astype(np.int32)
  inputs[:, :L] = rng.integers(0, first, size=(B, L))
  weights = np.zeros((B, T), np.float32)
  weights[:, loss_block * L:(loss_block + 1) * L] = 1.0
  batch = dict(make_batch(6, 32, reset=(True, True)), inputs=inputs, weights=weights)
  grads, (_, outs) = grads_of(tiny_cfg, variant, batch, remat_policy="nothing_saveable",
                              bptt_blocks=bptt_blocks)
  return np.asarray(grads["embed"]["embedding"][...])[:first], np.asarray(outs["loss"])


@pytest.mark.parametrize("variant", ["infini", "bswa"])
def test_bptt_blocks_truncates_gradient_flow(tiny_cfg, variant):
  """The loss of block 2 w.r.t. block 0's embeddings (bswa caches 2 blocks here, so block 0's
  keys sit in block 2's cache directly; with 1 layer nothing else links them)."""
  full, loss0 = _embedding_grad_of_one_block(tiny_cfg, variant, bptt_blocks=0, loss_block=2)
  cut1, loss1 = _embedding_grad_of_one_block(tiny_cfg, variant, bptt_blocks=1, loss_block=2)
  assert np.max(np.abs(full)) > 1e-5
  np.testing.assert_array_equal(cut1, 0.0)
  np.testing.assert_allclose(loss0, loss1, atol=1e-6)  # truncation is a backward-only change
  if variant == "infini":
    # bptt_blocks=2 cuts the boundary into block 2 but keeps the one into block 1.
    cut2, _ = _embedding_grad_of_one_block(tiny_cfg, variant, bptt_blocks=2, loss_block=2)
    kept2, _ = _embedding_grad_of_one_block(tiny_cfg, variant, bptt_blocks=2, loss_block=1)
    np.testing.assert_array_equal(cut2, 0.0)
    assert np.max(np.abs(kept2)) > 1e-5


@pytest.mark.parametrize("variant", ["infini_delta", "bswa", "fam"])
def test_skipping_unscored_blocks_changes_no_loss_gradient_or_memory(tiny_cfg, variant):
  """model.skip_unscored_outputs: blocks 0 and 2 carry no weight, so their top feed-forward and
  head are skipped; the loss, every gradient (through the memory of the skipped blocks) and the
  final memory equal the run without skipping. The skipped blocks' 'correct' is 0 (the skip ran:
  block 0's targets are the model's own argmax, 'correct' 1 when computed); FAM reads its memory
  from the top layer's output, so it never skips (decoder.can_skip_outputs)."""
  batch = {k: np.array(v) for k, v in make_batch(7, 32, reset=(True, True)).items()}  # unshared
  batch["weights"][:, :L] = 0.0
  batch["weights"][:, 2 * L:3 * L] = 0.0
  runs = {}
  for skip in (False, True):
    cfg, model, graphdef, params = build(tiny_cfg, variant, skip_unscored_outputs=skip)
    if not skip:  # block 0's targets := the model's own argmax, so computed 'correct' there is 1
      logits, _ = decoder_step(graphdef, params, jnp.asarray(batch["inputs"][:, :L]),
                               model.init_memory(B), jnp.asarray(batch["positions"][:, :L]),
                               jnp.ones((B,), bool))
      batch["targets"][:, :L] = np.asarray(logits).argmax(-1)
    loss = lambda params: scan.mean_loss(params, graphdef, model.init_memory(B), batch, cfg)
    runs[skip] = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
  (loss_ref, (mem_ref, outs_ref)), g_ref = runs[False]
  (loss_skip, (mem_skip, outs_skip)), g_skip = runs[True]
  np.testing.assert_allclose(float(loss_skip), float(loss_ref), rtol=1e-6)
  assert_trees_close(g_skip, g_ref)
  assert_trees_close(mem_skip, mem_ref)
  scored = batch["weights"] > 0
  np.testing.assert_array_equal(np.asarray(outs_skip["correct"])[scored],
                                np.asarray(outs_ref["correct"])[scored])
  unscored_ref = np.asarray(outs_ref["correct"])[:, :L]
  unscored_skip = np.asarray(outs_skip["correct"])[:, :L]
  if variant == "fam":
    np.testing.assert_array_equal(unscored_skip, unscored_ref)
  else:
    assert unscored_ref.min() == 1 and unscored_skip.max() == 0
