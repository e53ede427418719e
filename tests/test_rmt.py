"""Recurrent Memory Transformer (layers/rmt.py + the decoder's token-memory hook): the read/write
order and the carried memory against a hand-wired composition of the decoder's own submodules, and
gradient truncation (model.bptt_blocks) against a table worked out by hand.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.models import scan
from longctx.models.decoder import Decoder

B, L, M, NUM_BLOCKS = 2, 4, 2, 3
T = L * NUM_BLOCKS


def build(tiny_cfg, **overrides):
  cfg = tiny_cfg(**dict(dict(attention="rmt", num_layers=2, rmt=dict(num_tokens=M)), **overrides))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  return cfg, model, graphdef, nnx.to_pure_dict(state)


def hand_wired(model, tokens, positions):
  """Per block: h = [memory | embed(tokens) | memory] at positions [p0-M .. p0-1 | p | pL .. pL+M-1],
  the decoder's layers (causal attention over the M + L + M slots), final norm; logits from the L
  token slots, the next memory from the last M slots. Block 0 reads the learned initial memory."""
  memory = jnp.broadcast_to(model.token_memory.initial[...], (B, M, 16))  # d_model 16
  logits, memories = [], [memory]
  for s in range(NUM_BLOCKS):
    blk = slice(s * L, (s + 1) * L)
    pos = positions[:, blk]
    ext_pos = jnp.concatenate([pos[:, :1] - M + jnp.arange(M), pos, pos[:, -1:] + 1 + jnp.arange(M)], 1)
    h = jnp.concatenate([memory, model.embed(tokens[:, blk]), memory], axis=1)
    for layer in model.layers:
      h, _, _ = layer(h, {}, positions=ext_pos, reset=jnp.zeros((B,), bool))
    h = model.final_norm(h)
    logits.append(model.lm_head(h[:, M:M + L]))
    memory = h[:, M + L:]
    memories.append(memory)
  return jnp.concatenate(logits, axis=1), memories


def test_read_write_order_and_carried_memory(tiny_cfg):
  cfg, model, graphdef, params = build(tiny_cfg)
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(0, cfg.vocab_size, size=(B, T)))
  positions = jnp.asarray(np.stack([np.arange(T) + 5, np.arange(T) + 17]), jnp.int32)
  ref_logits, ref_memories = hand_wired(model, tokens, positions)
  targets = jnp.asarray(rng.integers(0, cfg.vocab_size, size=(B, T)))
  batch = {"inputs": tokens, "targets": targets, "positions": positions}
  memory, outs = jax.jit(lambda p: scan.run_blocks(graphdef, p, model.init_memory(B), batch, cfg))(params)
  logp = jax.nn.log_softmax(ref_logits, axis=-1)
  ref_loss = -np.take_along_axis(np.asarray(logp), np.asarray(targets)[..., None], -1)[..., 0]
  np.testing.assert_allclose(np.asarray(outs["loss"]), ref_loss, atol=1e-5, rtol=1e-5)
  assert len(memory) == cfg.num_layers + 1  # one {} per layer, then the memory tokens
  np.testing.assert_allclose(np.asarray(memory[-1]["tokens"]), np.asarray(ref_memories[-1]),
                             atol=1e-5, rtol=1e-5)
  # The carried memory matters: the hand-wired blocks with block 1 reading the initial memory
  # instead of block 0's write differ from block 1 on.
  assert np.max(np.abs(np.asarray(ref_memories[1] - ref_memories[0]))) > 1e-2


def test_tokens_see_the_read_memory_and_the_write_memory_sees_the_whole_block(tiny_cfg):
  """Read slots come first: a different incoming memory changes every token's logits. Write slots
  come last: changing only the block's last token changes the new memory (and no earlier logit)."""
  cfg, model, graphdef, params = build(tiny_cfg)
  step = jax.jit(lambda p, tok, mem: nnx.merge(graphdef, p)(
      tok, mem, positions=jnp.broadcast_to(jnp.arange(L), (B, L)), reset=jnp.zeros((B,), bool)))
  rng = np.random.default_rng(1)
  tokens = rng.integers(0, cfg.vocab_size, size=(B, L))
  memory = model.init_memory(B)
  other = memory[:-1] + ({"tokens": memory[-1]["tokens"] + rng.normal(size=(B, M, 16))},)
  logits, new = step(params, tokens, memory)
  logits_other, _ = step(params, tokens, other)
  assert np.all(np.max(np.abs(np.asarray(logits_other - logits)), axis=-1) > 1e-4)
  changed = tokens.copy()
  changed[:, -1] = (changed[:, -1] + 1) % cfg.vocab_size
  logits_changed, new_changed = step(params, changed, memory)
  np.testing.assert_array_equal(np.asarray(logits_changed[:, :-1]), np.asarray(logits[:, :-1]))
  assert np.max(np.abs(np.asarray(new_changed[-1]["tokens"] - new[-1]["tokens"]))) > 1e-4


def test_reset_reads_the_learned_initial_memory(tiny_cfg):
  cfg, model, graphdef, params = build(tiny_cfg)
  step = jax.jit(lambda p, mem, reset: nnx.merge(graphdef, p)(
      jnp.ones((B, L), jnp.int32), mem, positions=jnp.broadcast_to(jnp.arange(L), (B, L)),
      reset=reset))
  used = model.init_memory(B)[:-1] + ({"tokens": jnp.full((B, M, 16), 0.5)},)
  out_reset, _ = step(params, used, jnp.asarray([True, False]))
  out_fresh, _ = step(params, model.init_memory(B), jnp.asarray([False, False]))
  out_kept, _ = step(params, used, jnp.asarray([False, False]))
  np.testing.assert_array_equal(np.asarray(out_reset[0]), np.asarray(out_fresh[0]))
  np.testing.assert_array_equal(np.asarray(out_reset[1]), np.asarray(out_kept[1]))
  assert np.max(np.abs(np.asarray(out_kept[0] - out_fresh[0]))) > 1e-4


@functools.lru_cache(maxsize=None)
def _grad_fn(tiny_cfg, bptt_blocks):
  cfg, model, graphdef, params = build(tiny_cfg, num_layers=1, bptt_blocks=bptt_blocks)
  loss = lambda p, batch: scan.mean_loss(p, graphdef, model.init_memory(B), batch, cfg)
  return params, jax.jit(jax.grad(loss, has_aux=True))


# Block r uses its own tokens only: block 0 -> 0..9, block 1 -> 10..19, block 2 -> 20..31.
_RANGES = [(0, 10), (10, 20), (20, 32)]

# Worked out by hand: the loss of block s reaches block r's embeddings (r < s) only through the
# memory tokens written by blocks r .. s-1, and bptt_blocks = k stops gradients on the memory
# entering block i whenever i > 0 and i % k == 0.  (k = 0: never.)
#   k = 0: every r <= s.   k = 1: r = s only.   k = 2: the cut is before block 2, so (r=0, s=1)
#   flows and nothing before block 2 reaches block 2's loss.
_EXPECTED = {  # (k, s) -> blocks r whose embeddings get a gradient
    (0, 0): {0}, (0, 1): {0, 1}, (0, 2): {0, 1, 2},
    (1, 0): {0}, (1, 1): {1}, (1, 2): {2},
    (2, 0): {0}, (2, 1): {0, 1}, (2, 2): {2},
}


@pytest.mark.parametrize("bptt_blocks", [0, 1, 2])
def test_gradient_truncation_table(tiny_cfg, bptt_blocks):
  params, grad_fn = _grad_fn(tiny_cfg, bptt_blocks)
  rng = np.random.default_rng(2)
  inputs = np.concatenate([rng.integers(lo, hi, size=(B, L)) for lo, hi in _RANGES], axis=1)
  targets = rng.integers(0, 32, size=(B, T))
  for s in range(NUM_BLOCKS):
    weights = np.zeros((B, T), np.float32)
    weights[:, s * L:(s + 1) * L] = 1.0
    batch = {"inputs": jnp.asarray(inputs), "targets": jnp.asarray(targets),
             "weights": jnp.asarray(weights)}
    grads, _ = grad_fn(params, batch)
    rows = np.asarray(grads["embed"]["embedding"])
    for r, (lo, hi) in enumerate(_RANGES):
      reached = np.max(np.abs(rows[lo:hi])) > 1e-7
      assert reached == (r in _EXPECTED[(bptt_blocks, s)]), (bptt_blocks, s, r)
    # The learned initial memory is read by block 0 only: reached iff block 0 is.
    init_grad = np.max(np.abs(np.asarray(grads["token_memory"]["initial"])))
    assert (init_grad > 1e-7) == (0 in _EXPECTED[(bptt_blocks, s)]), (bptt_blocks, s)
