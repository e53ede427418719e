"""Local-attention baselines (longctx.layers.local): full, bswa, xl.

References:
  - `full` attention on the whole sequence, where the BSWA window covers everything;
  - a float64 numpy attention whose mask is built per query from TransformerFAM eq. 1a-1c
    (papers.md 1(a)): a query at position i of block tau sees the keys of blocks tau-m .. tau-1 and
    keys tau*L .. i of its own block.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.layers.local import BlockSlidingWindowAttention, TransformerXLAttention
from longctx.models.decoder import Decoder

D_MODEL, H = 16, 2
D = D_MODEL // H
L = 4
NUM_BLOCKS = 5
B = 2
T = L * NUM_BLOCKS
THETA = 10000.0
# [B, T]: absolute positions, a different offset per example.
POSITIONS = np.stack([np.arange(T) + 5, np.arange(T) + 37]).astype(np.int32)


# ----------------------------------------------------------------------------- numpy reference

def np_rope(x, positions, theta=THETA):
  """Rotate-half RoPE: pairs (i, i + D/2) rotated by p * theta^(-i / (D/2)). x [B, T, H, D]."""
  half = x.shape[-1] // 2
  out = np.empty_like(x)
  for i in range(half):
    angle = positions.astype(np.float64) * theta ** (-i / half)  # [B, T]
    c, s = np.cos(angle)[:, :, None], np.sin(angle)[:, :, None]
    a, b = x[..., i], x[..., i + half]
    out[..., i] = a * c - b * s
    out[..., i + half] = b * c + a * s
  return out


def bswa_visible_keys(i, m, block_len=L):
  """Eq. 1a-1b: Khat_i = Concat(K_{tau-m : tau-1}, K_{tau, :i}) for the query at position i."""
  tau = i // block_len
  cached = range(max(0, (tau - m) * block_len), tau * block_len)
  own = range(tau * block_len, i + 1)
  return list(cached) + list(own)


def np_bswa(x, p, positions, m):
  """x [B, T, d_model] -> y [B, T, d_model], per-query key lists from bswa_visible_keys."""
  x = np.asarray(x, np.float64)
  b, t, _ = x.shape
  q, k, v = ((x @ p[w]).reshape(b, t, H, D) for w in ("wq", "wk", "wv"))
  q, k = np_rope(q, positions), np_rope(k, positions)
  out = np.zeros_like(v)
  for i in range(t):
    keys = bswa_visible_keys(i, m)
    for bi in range(b):
      for hi in range(H):
        logits = np.array([q[bi, i, hi] @ k[bi, j, hi] for j in keys]) / np.sqrt(D)
        w = np.exp(logits - logits.max())
        w /= w.sum()
        out[bi, i, hi] = sum(wj * v[bi, j, hi] for wj, j in zip(w, keys))
  return out.reshape(b, t, H * D) @ p["wo"]


def np_params(state):
  get = lambda v: np.asarray(v[...], np.float64)
  return {w: get(state[name]["kernel"])
          for w, name in (("wq", "query"), ("wk", "key"), ("wv", "value"), ("wo", "out"))}


# ----------------------------------------------------------------------------- harness

@functools.partial(jax.jit, static_argnums=0)
def module_step(graphdef, state, x, memory, positions, reset):
  """One block through a layer or a decoder (same protocol): returns (y or logits, new memory)."""
  return nnx.merge(graphdef, state)(x, memory, positions=positions, reset=reset)


def run_blocks_loop(graphdef, state, x, positions, memory, reset=None, block_len=L):
  """Python loop over blocks of x [B, T, ...]; reset [B] applies before the first block only."""
  b, t = x.shape[:2]
  no_reset = jnp.zeros((b,), bool)
  ys = []
  for s in range(t // block_len):
    sl = slice(s * block_len, (s + 1) * block_len)
    r = no_reset if (s > 0 or reset is None) else jnp.asarray(reset)
    y, memory = module_step(graphdef, state, jnp.asarray(x[:, sl]), memory,
                            jnp.asarray(positions[:, sl]), r)
    ys.append(y)
  return jnp.concatenate(ys, axis=1), memory


def make_layer(kind, m, seed=0):
  common = dict(block_len=L, mem_blocks=m, dtype=jnp.float32, rope_theta=THETA,
                rngs=nnx.Rngs(seed))
  if kind == "xl":
    layer = TransformerXLAttention(D_MODEL, H, **common)
  else:
    layer = BlockSlidingWindowAttention(D_MODEL, H, stop_grad=(kind == "bswa_sg"), **common)
  return nnx.split(layer)


def init_memory(graphdef, state, b=B):
  return nnx.merge(graphdef, state).init_memory(b)


def random_input(seed, b=B, t=T):
  return np.random.default_rng(seed).normal(size=(b, t, D_MODEL)).astype(np.float32)


def random_tokens(seed, vocab, b=B, t=T):
  return np.random.default_rng(seed).integers(0, vocab, size=(b, t)).astype(np.int32)


# ----------------------------------------------------------------------------- tests

def test_visible_keys_follow_the_paper_window():
  """Self-check of the reference mask: a token sees between m*L + 1 and (m+1)*L keys once m
  blocks precede it, nothing from the future, and its own block causally."""
  m = 2
  for i in range(T):
    keys = bswa_visible_keys(i, m)
    assert max(keys) == i and keys == sorted(set(keys))
    if i // L >= m:
      assert m * L + 1 <= len(keys) <= (m + 1) * L
  assert bswa_visible_keys(2 * L + 1, m) == list(range(0, 2 * L + 2))
  assert bswa_visible_keys(3 * L, 1) == list(range(2 * L, 3 * L + 1))


@pytest.mark.parametrize("kind,m", [("bswa", 0), ("bswa", 1), ("bswa", 2), ("xl", 1), ("xl", 2),
                                    ("bswa_sg", 2)])
def test_layer_matches_explicit_mask_reference(kind, m):
  graphdef, state = make_layer(kind, m)
  x = random_input(1)
  y, _ = run_blocks_loop(graphdef, state, x, POSITIONS, init_memory(graphdef, state))
  y_ref = np_bswa(x, np_params(state), POSITIONS, m)
  np.testing.assert_allclose(np.asarray(y), y_ref, atol=1e-5, rtol=1e-5)
  # The window matters: a reference with one block more (or less) of cache differs.
  other = np_bswa(x, np_params(state), POSITIONS, m + 1)
  assert np.max(np.abs(other - y_ref)) > 1e-3


@pytest.mark.parametrize("attention,m", [("bswa", NUM_BLOCKS - 1), ("bswa", NUM_BLOCKS + 1),
                                         ("xl", NUM_BLOCKS - 1)])
def test_window_covering_everything_equals_full_attention(tiny_cfg, attention, m):
  """A 2-layer decoder with `full`'s params in a bswa/xl graphdef, run block by block with its
  cache, gives full attention's logits over the whole sequence."""
  full_cfg = tiny_cfg(attention="full", num_layers=2, block_len=L)
  full = Decoder(full_cfg, nnx.Rngs(0))
  full_graphdef, params = nnx.split(full)
  cfg = tiny_cfg(attention=attention, num_layers=2, block_len=L, **{attention: dict(mem_blocks=m)})
  graphdef, other_params = nnx.split(Decoder(cfg, nnx.Rngs(1)))
  assert jax.tree.structure(other_params) == jax.tree.structure(params)
  tokens = random_tokens(2, full_cfg.vocab_size)
  reset = jnp.ones((B,), bool)
  logits_full, _ = module_step(full_graphdef, params, jnp.asarray(tokens), full.init_memory(B),
                               jnp.asarray(POSITIONS), reset)
  memory = nnx.merge(graphdef, params).init_memory(B)
  logits, _ = run_blocks_loop(graphdef, params, tokens, POSITIONS, memory, reset)
  np.testing.assert_allclose(np.asarray(logits), np.asarray(logits_full), atol=1e-4, rtol=1e-4)


@functools.partial(jax.jit, static_argnums=0)
def two_block_loss_and_grad(graphdef, params, tokens, targets, positions):
  """Cross-entropy of block 1 after block 0 filled the cache. tokens, positions [2, B, L]."""
  def loss(params):
    model = nnx.merge(graphdef, params)
    b = tokens.shape[1]
    _, memory = model(tokens[0], model.init_memory(b), positions=positions[0],
                      reset=jnp.ones((b,), bool))
    logits, _ = model(tokens[1], memory, positions=positions[1], reset=jnp.zeros((b,), bool))
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))
  return jax.value_and_grad(loss)(params)


@pytest.mark.parametrize("kind,expect_flow", [("bswa", True), ("bswa_sg", False), ("xl", False)])
def test_gradient_through_cache(tiny_cfg, kind, expect_flow):
  """1 layer, 2 blocks. Block 0 uses tokens 0..15 only, block 1 tokens 16..31 only, so the
  embedding rows 0..15 reach the last block's loss only through the cached keys/values."""
  attention = "xl" if kind == "xl" else "bswa"
  cfg = tiny_cfg(attention=attention, block_len=L,
                 bswa=dict(mem_blocks=1, stop_grad=(kind == "bswa_sg")))
  graphdef, _ = nnx.split(Decoder(cfg, nnx.Rngs(0)))
  # The same params for every variant (the stop-gradient flag lives in the graphdef).
  bswa_graphdef, params = nnx.split(Decoder(tiny_cfg(attention="bswa", block_len=L), nnx.Rngs(0)))
  rng = np.random.default_rng(3)
  half = cfg.vocab_size // 2
  tokens = jnp.stack([rng.integers(0, half, size=(B, L)),                # block 0
                      rng.integers(half, cfg.vocab_size, size=(B, L))])  # block 1; [2, B, L]
  targets = jnp.asarray(rng.integers(0, cfg.vocab_size, size=(B, L)))
  positions = jnp.stack([POSITIONS[:, :L], POSITIONS[:, L:2 * L]])

  value, grads = two_block_loss_and_grad(graphdef, params, tokens, targets, positions)
  rows = np.asarray(grads["embed"]["embedding"][...])  # [V, d_model]
  assert np.max(np.abs(rows[half:])) > 1e-4  # block 1's own tokens always get a gradient
  if expect_flow:
    assert np.max(np.abs(rows[:half])) > 1e-4
  else:
    np.testing.assert_array_equal(rows[:half], 0.0)
  # Stop-gradient changes nothing in the forward pass.
  ref_value, _ = two_block_loss_and_grad(bswa_graphdef, params, tokens, targets, positions)
  np.testing.assert_allclose(float(value), float(ref_value), rtol=1e-6)


@pytest.mark.parametrize("kind", ["bswa", "xl"])
def test_reset_clears_cache(kind):
  """reset[b]=True gives example b exactly what an empty cache gives; reset=False keeps it."""
  graphdef, state = make_layer(kind, 2)
  x = random_input(4, t=2 * L)
  positions = POSITIONS[:, :2 * L]
  _, carried = run_blocks_loop(graphdef, state, random_input(5, t=3 * L), POSITIONS[:, :3 * L],
                               init_memory(graphdef, state))
  run = lambda mem, reset: run_blocks_loop(graphdef, state, x, positions, mem, reset)
  y_reset, mem_reset = run(carried, [True, False])
  y_fresh, mem_fresh = run(init_memory(graphdef, state), [False, False])
  y_kept, mem_kept = run(carried, [False, False])
  np.testing.assert_array_equal(np.asarray(y_reset[0]), np.asarray(y_fresh[0]))
  np.testing.assert_array_equal(np.asarray(y_reset[1]), np.asarray(y_kept[1]))
  for key in ("keys", "values", "valid"):
    np.testing.assert_array_equal(np.asarray(mem_reset[key][0]), np.asarray(mem_fresh[key][0]))
    np.testing.assert_array_equal(np.asarray(mem_reset[key][1]), np.asarray(mem_kept[key][1]))
  assert np.max(np.abs(np.asarray(y_fresh[0] - y_kept[0]))) > 1e-3
  # An empty cache behaves like the start of the sequence: numpy reference on x alone.
  y_ref = np_bswa(x, np_params(state), positions, 2)
  np.testing.assert_allclose(np.asarray(y_reset[0]), y_ref[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ["full", "bswa", "xl", "infini"])
def test_no_token_sees_the_future(tiny_cfg, attention):
  """Changing token t leaves the logits of every position < t unchanged (decoder, 2 layers)."""
  cfg = tiny_cfg(attention=attention, num_layers=2, block_len=L, bswa=dict(mem_blocks=2))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  block_len = T if attention == "full" else L
  tokens = random_tokens(6, cfg.vocab_size)

  def logits_of(tokens):
    out, _ = run_blocks_loop(graphdef, params, tokens, POSITIONS, model.init_memory(B),
                             jnp.ones((B,), bool), block_len=block_len)
    return np.asarray(out)

  base = logits_of(tokens)
  for t in (0, L - 1, L, 2 * L + 1, T - 1):
    changed = tokens.copy()
    changed[:, t] = (changed[:, t] + 1) % cfg.vocab_size
    out = logits_of(changed)
    np.testing.assert_array_equal(out[:, :t], base[:, :t], err_msg=f"t={t}")
    assert np.max(np.abs(out[:, t] - base[:, t])) > 1e-4, t
