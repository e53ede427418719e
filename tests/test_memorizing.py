"""MemorizingAttention (longctx.layers.memorizing) and ops/knn.py against float64 numpy references.

Reference per query t of block s (papers.md section 5; decisions in layers/memorizing.py):
  Q, K, V = x W_Q, x W_K, x W_V split into heads                      [B, T, H, D]
  A_local = softmax(rope(q_t) rope(K_j) / sqrt(D)) over j in [(s - m) L, t]   (Transformer-XL)
  A_mem   = softmax over the top_k j of the memory of s_h q^_t . k^_j, j in the last `capacity`
            tokens before block s (q^, k^ unit vectors, no rotation), . V_j; 0 if none
  y = concat_h(g_h A_mem + (1 - g_h) A_local) W_O,   g_h = sigmoid(b_h), s_h = exp(a_h)
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.layers import make_attention
from longctx.layers.local import TransformerXLAttention
from longctx.layers.memorizing import MemorizingAttention
from longctx.models import scan
from longctx.models.decoder import Decoder
from longctx.ops import knn
from test_infini import np_rope

D_MODEL, H = 16, 2
D = D_MODEL // H
L, NUM_BLOCKS, B = 4, 5, 2
T = L * NUM_BLOCKS
THETA = 10000.0
POSITIONS = np.stack([np.arange(T) + 3, np.arange(T) + 41]).astype(np.int32)  # [B, T]


# ----------------------------------------------------------------------------- numpy reference

def np_softmax_attend(q, keys, values):
  """q [D]; keys, values [S, D] (logits already scaled by the caller through q)."""
  logits = keys @ q
  p = np.exp(logits - logits.max())
  return (p / p.sum()) @ values


def np_memorizing(x, p, *, mem_blocks, capacity, top_k):
  x = np.asarray(x, np.float64)
  b, t, _ = x.shape
  q, k, v = ((x @ p[w]).reshape(b, t, H, D) for w in ("wq", "wk", "wv"))
  q_rot, k_rot = np_rope(q, POSITIONS), np_rope(k, POSITIONS)
  unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)
  q_hat, k_hat = unit(q), unit(k)
  g = 1.0 / (1.0 + np.exp(-p["gate"]))
  scale = np.exp(p["log_scale"])
  out = np.zeros((b, t, H, D))
  for i in range(t):
    s = i // L
    local = list(range(max(0, (s - mem_blocks) * L), i + 1))
    past = list(range(max(0, s * L - capacity), s * L))
    for bi in range(b):
      for hi in range(H):
        a_local = np_softmax_attend(q_rot[bi, i, hi] / np.sqrt(D), k_rot[bi, local, hi],
                                    v[bi, local, hi])
        a_mem = np.zeros(D)
        if past:
          scores = scale[hi] * (k_hat[bi, past, hi] @ q_hat[bi, i, hi])
          best = np.argsort(-scores)[:top_k]
          a_mem = np_softmax_attend(np.ones(1), scores[best, None], v[bi, past, hi][best])
        out[bi, i, hi] = g[hi] * a_mem + (1 - g[hi]) * a_local
  return out.reshape(b, t, H * D) @ p["wo"]


def np_params(state):
  get = lambda a: np.asarray(a[...], np.float64)
  return dict(wq=get(state["query"]["kernel"]), wk=get(state["key"]["kernel"]),
              wv=get(state["value"]["kernel"]), wo=get(state["out"]["kernel"]),
              gate=get(state["gate"]), log_scale=get(state["log_scale"]))


# ----------------------------------------------------------------------------- code under test

def make_layer(capacity, top_k, mem_blocks=1, approximate=False, seed=0):
  layer = MemorizingAttention(D_MODEL, H, block_len=L, mem_blocks=mem_blocks, capacity=capacity,
                              top_k=top_k, gate_init=0.0, scale_init=4.0, approximate=approximate,
                              recall_target=0.95, dtype=jnp.float32, rope_theta=THETA,
                              rngs=nnx.Rngs(seed))
  # Distinct per-head gates and scales, so a head-axis mix-up cannot pass.
  layer.gate[...] = jnp.asarray([0.8, -0.4])
  layer.log_scale[...] = jnp.log(jnp.asarray([3.0, 6.0]))
  return nnx.split(layer)


@functools.partial(jax.jit, static_argnums=0)
def run_layer(graphdef, state, x, memory, reset):
  """The layer over x [B, T, d] block by block; reset [B] before the first block."""
  b, t, d = x.shape
  n = t // L
  xs = (jnp.swapaxes(x.reshape(b, n, L, d), 0, 1), jnp.swapaxes(POSITIONS.reshape(b, n, L), 0, 1),
        jnp.zeros((n, b), bool).at[0].set(reset))

  def body(mem, inp):
    y, mem = nnx.merge(graphdef, state)(inp[0], mem, positions=inp[1], reset=inp[2])
    return mem, y
  memory, ys = jax.lax.scan(body, memory, xs)
  return jnp.swapaxes(ys, 0, 1).reshape(b, t, d), memory


def run_fresh(graphdef, state, x):
  memory = nnx.merge(graphdef, state).init_memory(x.shape[0])
  return run_layer(graphdef, state, jnp.asarray(x), memory, jnp.ones((x.shape[0],), bool))


def random_input(seed, b=B, t=T):
  return np.random.default_rng(seed).normal(size=(b, t, D_MODEL)).astype(np.float32)


# ----------------------------------------------------------------------------- tests

def test_knn_attention_matches_brute_force():
  """ops.knn.knn_attention: top-k of the valid slots, softmax over them; a row with no valid slot
  reads exactly 0."""
  rng = np.random.default_rng(0)
  bq, lq, m, k = 2, 3, 10, 4
  q = rng.normal(size=(bq, lq, H, D))
  keys, values = rng.normal(size=(2, bq, m, H, D))
  valid = rng.random((bq, m)) < 0.6
  valid[1] = False
  scale = np.array([0.7, 1.9])
  out = np.asarray(knn.knn_attention(jnp.asarray(q, jnp.float32), jnp.asarray(keys, jnp.float32),
                                     jnp.asarray(values, jnp.float32), jnp.asarray(valid),
                                     top_k=k, scale=jnp.asarray(scale, jnp.float32)))
  np.testing.assert_array_equal(out[1], 0.0)
  for i in range(lq):
    for h in range(H):
      slots = np.flatnonzero(valid[0])
      scores = scale[h] * (keys[0, slots, h] @ q[0, i, h])
      best = np.argsort(-scores)[:k]
      ref = np_softmax_attend(np.ones(1), scores[best, None], values[0, slots[best], h])
      np.testing.assert_allclose(out[0, i, h], ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("capacity,top_k,mem_blocks", [
    (T, T, 1),      # capacity covers the whole past, k = capacity: attention over the whole past
    (2 * L, 2 * L, 2),  # FIFO: only the last two blocks remain retrievable
    (3 * L, 3, 1),  # top-k selection: 3 of the 12 most recent tokens per query
])
def test_layer_matches_numpy_reference(capacity, top_k, mem_blocks):
  graphdef, state = make_layer(capacity, top_k, mem_blocks)
  x = random_input(1)
  y, _ = run_fresh(graphdef, state, x)
  p = np_params(state)
  y_ref = np_memorizing(x, p, mem_blocks=mem_blocks, capacity=capacity, top_k=top_k)
  np.testing.assert_allclose(np.asarray(y), y_ref, atol=1e-5, rtol=1e-5)
  # The memory path matters: a reference whose memory holds one block less differs.
  other = np_memorizing(x, p, mem_blocks=mem_blocks, capacity=min(capacity, T - L) - L,
                        top_k=top_k)
  assert np.max(np.abs(other - y_ref)) > 1e-3


def test_whole_past_memory_with_gate_one_is_attention_over_the_whole_past():
  """Gate -> 1 (b = 30): the layer's output is the normalised-q/k softmax attention over every
  earlier token (block 0 reads nothing: exactly 0)."""
  graphdef, state = make_layer(T, T)
  state["gate"][...] = jnp.full((H,), 30.0)
  x = random_input(2)
  y, _ = run_fresh(graphdef, state, x)
  p = np_params(state)
  q, k, v = ((np.asarray(x, np.float64) @ p[w]).reshape(B, T, H, D) for w in ("wq", "wk", "wv"))
  unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)
  out = np.zeros((B, T, H, D))
  for i in range(L, T):
    past = slice(0, (i // L) * L)
    for bi in range(B):
      for hi in range(H):
        logits = np.exp(p["log_scale"][hi]) * unit(k[bi, past, hi]) @ unit(q[bi, i, hi])
        out[bi, i, hi] = np_softmax_attend(np.ones(1), logits[:, None], v[bi, past, hi])
  ref = out.reshape(B, T, D_MODEL) @ p["wo"]
  np.testing.assert_allclose(np.asarray(y), ref, atol=1e-5, rtol=1e-5)


def test_fifo_drops_the_oldest_blocks_first():
  """capacity 2 blocks, 5 blocks written: the buffer holds exactly blocks 3 and 4 (normalised keys,
  values), block 4 in the slots block 2 had (ring order), all valid, next write at slot 4."""
  graphdef, state = make_layer(2 * L, 2 * L)
  x = random_input(3)
  _, mem = run_fresh(graphdef, state, x)
  p = np_params(state)
  k = (np.asarray(x, np.float64) @ p["wk"]).reshape(B, T, H, D)
  v = (np.asarray(x, np.float64) @ p["wv"]).reshape(B, T, H, D)
  k_hat = k / np.linalg.norm(k, axis=-1, keepdims=True)
  knn_mem = mem["knn"]
  expect_keys = np.concatenate([k_hat[:, 4 * L:5 * L], k_hat[:, 3 * L:4 * L]], axis=1)
  expect_values = np.concatenate([v[:, 4 * L:5 * L], v[:, 3 * L:4 * L]], axis=1)
  np.testing.assert_allclose(np.asarray(knn_mem["keys"]), expect_keys, atol=1e-5)
  np.testing.assert_allclose(np.asarray(knn_mem["values"]), expect_values, atol=1e-5)
  assert np.asarray(knn_mem["valid"]).all()
  np.testing.assert_array_equal(np.asarray(knn_mem["index"]), [L, L])


def test_examples_do_not_share_a_memory():
  """Changing example 1 in every block leaves example 0's outputs and memory bit-identical."""
  graphdef, state = make_layer(3 * L, 5)
  x = random_input(5)
  x2 = x.copy()
  x2[1] = random_input(6, b=1)[0]
  (y, mem), (y2, mem2) = run_fresh(graphdef, state, x), run_fresh(graphdef, state, x2)
  np.testing.assert_array_equal(np.asarray(y[0]), np.asarray(y2[0]))
  jax.tree.map(lambda a, c: np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(c[0])),
               mem, mem2)
  assert np.max(np.abs(np.asarray(y[1] - y2[1]))) > 1e-3


def test_reset_clears_memory():
  """reset[b]=True gives example b what a fresh memory gives (and the reference); False keeps it."""
  graphdef, state = make_layer(T, T)
  x = jnp.asarray(random_input(7))
  _, carried = run_fresh(graphdef, state, random_input(8))
  fresh = nnx.merge(graphdef, state).init_memory(B)
  y_reset, mem_reset = run_layer(graphdef, state, x, carried, jnp.asarray([True, False]))
  y_fresh, mem_fresh = run_layer(graphdef, state, x, fresh, jnp.asarray([False, False]))
  y_kept, _ = run_layer(graphdef, state, x, carried, jnp.asarray([False, False]))
  np.testing.assert_array_equal(np.asarray(y_reset[0]), np.asarray(y_fresh[0]))
  np.testing.assert_array_equal(np.asarray(y_reset[1]), np.asarray(y_kept[1]))
  jax.tree.map(lambda a, c: np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(c[0])),
               mem_reset, mem_fresh)
  assert np.max(np.abs(np.asarray(y_fresh[0] - y_kept[0]))) > 1e-3
  y_ref = np_memorizing(np.asarray(x), np_params(state), mem_blocks=1, capacity=T, top_k=T)
  np.testing.assert_allclose(np.asarray(y_reset[0]), y_ref[0], atol=1e-5, rtol=1e-5)


def test_approximate_top_k_option_runs_and_is_exact_on_cpu():
  """lax.approx_max_k (fast on TPU) falls back to an exact top-k on CPU: same outputs."""
  x = random_input(9)
  y_exact, _ = run_fresh(*make_layer(3 * L, 3), x)
  y_approx, _ = run_fresh(*make_layer(3 * L, 3, approximate=True), x)
  if jax.default_backend() == "cpu":
    np.testing.assert_allclose(np.asarray(y_approx), np.asarray(y_exact), atol=1e-6)


def test_memory_is_stop_gradient_but_gate_and_scale_learn(tiny_cfg):
  """1 layer, 2 blocks, block 0 uses tokens 0..15 only and block 1 tokens 16..31. The loss of block 1
  reaches block 0's embedding rows neither through the XL cache nor the kNN memory (both
  stop-gradient, as the paper), while the gate and the scale get gradients."""
  cfg = tiny_cfg(attention="memorizing", memorizing=dict(capacity=2 * L, top_k=2 * L))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  rng = np.random.default_rng(3)
  inputs = np.concatenate([rng.integers(0, 16, size=(B, L)), rng.integers(16, 32, size=(B, L))], 1)
  weights = np.concatenate([np.zeros((B, L)), np.ones((B, L))], 1).astype(np.float32)
  batch = {"inputs": jnp.asarray(inputs), "targets": jnp.asarray(rng.integers(0, 32, size=(B, 2 * L))),
           "weights": jnp.asarray(weights)}
  grads, _ = jax.jit(jax.grad(lambda p: scan.mean_loss(p, graphdef, model.init_memory(B), batch,
                                                       cfg), has_aux=True))(params)
  rows = np.asarray(grads["embed"]["embedding"][...])
  np.testing.assert_array_equal(rows[:16], 0.0)
  assert np.max(np.abs(rows[16:])) > 1e-4
  attn = grads["layers"][0]["attention"]
  assert np.all(np.abs(np.asarray(attn["gate"][...])) > 1e-6)
  assert np.all(np.abs(np.asarray(attn["log_scale"][...])) > 1e-6)


def test_memorizing_layers_choose_the_knn_layers(tiny_cfg):
  """model.memorizing.layers=(1,): layer 1 carries the kNN memory, layers 0 and 2 are XL layers;
  () puts it on every layer."""
  cfg = tiny_cfg(attention="memorizing", num_layers=3, memorizing=dict(capacity=8, top_k=4, layers=(1,)))
  kinds = [type(make_attention(cfg, nnx.Rngs(0), i)) for i in range(3)]
  assert kinds == [TransformerXLAttention, MemorizingAttention, TransformerXLAttention]
  memory = Decoder(cfg, nnx.Rngs(0)).init_memory(B)
  assert [sorted(m) for m in memory] == [["keys", "valid", "values"], ["knn", "xl"],
                                        ["keys", "valid", "values"]]
  every = tiny_cfg(attention="memorizing", num_layers=2, memorizing=dict(capacity=8, top_k=4))
  assert all(isinstance(make_attention(every, nnx.Rngs(0), i), MemorizingAttention) for i in range(2))
