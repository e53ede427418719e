"""CompressiveAttention (longctx.layers.compressive) against a float64 numpy reference, Transformer-XL
over the longer cache, and the gradient paths of the attention-reconstruction loss.

Reference for block s (mem_blocks m, rate c, n_cm compressed slots; decisions in the layer file):
  q, k = rope(x W_Q), rope(x W_K); v = x W_V                              [B, T, H, D]
  block e leaves the XL cache at the end of block e + m and is compressed into L / c slots
    K_c[j] = sum_i k[e L + j c + i] (flattened H D) W^K_i, same for V with W^V_i
  token t of block s attends to [the last n_cm compressed slots of blocks e <= s - 1 - m |
    tokens (s - m) L .. t], softmax(q k / sqrt(D))
  aux_s = recon_weight * mean_{L,H,D} (Attn(q_s, block s - m) - Attn(q_s, f_c(block s - m)))^2,
    0 while s < m
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.layers.compressive import CompressiveAttention
from longctx.layers.local import TransformerXLAttention
from longctx.models import scan
from longctx.models.decoder import Decoder
from test_infini import np_rope
from test_memorizing import np_softmax_attend

D_MODEL, H = 16, 2
D = D_MODEL // H
L, NUM_BLOCKS, B = 4, 6, 2
T = L * NUM_BLOCKS
THETA = 10000.0
POSITIONS = np.stack([np.arange(T) + 3, np.arange(T) + 41]).astype(np.int32)


def np_compressive(x, p, *, mem_blocks, compressed_len, rate, recon_weight):
  x = np.asarray(x, np.float64)
  b, t, _ = x.shape
  q, k, v = ((x @ p[w]).reshape(b, t, H, D) for w in ("wq", "wk", "wv"))
  q, k = np_rope(q, POSITIONS), np_rope(k, POSITIONS)

  def compress(a, w, e):  # block e of a [B, T, H, D] -> [B, L / c, H, D]
    blk = a[:, e * L:(e + 1) * L].reshape(b, L // rate, rate, H * D)
    return np.einsum("bjci,cio->bjo", blk, w).reshape(b, L // rate, H, D)

  out, aux = np.zeros((b, t, H, D)), np.zeros((b, t // L))
  for s in range(t // L):
    evicted = list(range(0, s - mem_blocks))
    comp_k = np.concatenate([compress(k, p["ck"], e) for e in evicted] + [np.zeros((b, 0, H, D))], 1)
    comp_v = np.concatenate([compress(v, p["cv"], e) for e in evicted] + [np.zeros((b, 0, H, D))], 1)
    comp_k, comp_v = comp_k[:, -compressed_len:], comp_v[:, -compressed_len:]
    for i in range(s * L, (s + 1) * L):
      local = slice(max(0, (s - mem_blocks) * L), i + 1)
      for bi in range(b):
        for hi in range(H):
          keys = np.concatenate([comp_k[bi, :, hi], k[bi, local, hi]])
          values = np.concatenate([comp_v[bi, :, hi], v[bi, local, hi]])
          out[bi, i, hi] = np_softmax_attend(q[bi, i, hi] / np.sqrt(D), keys, values)
    e = s - mem_blocks
    if e >= 0:
      ck, cv = compress(k, p["ck"], e), compress(v, p["cv"], e)
      for bi in range(b):
        err = 0.0
        for i in range(s * L, (s + 1) * L):
          for hi in range(H):
            old = slice(e * L, (e + 1) * L)
            target = np_softmax_attend(q[bi, i, hi] / np.sqrt(D), k[bi, old, hi], v[bi, old, hi])
            approx = np_softmax_attend(q[bi, i, hi] / np.sqrt(D), ck[bi, :, hi], cv[bi, :, hi])
            err += np.sum((target - approx) ** 2)
        aux[bi, s] = recon_weight * err / (L * H * D)
  return out.reshape(b, t, H * D) @ p["wo"], aux


def np_params(state):
  get = lambda a: np.asarray(a[...], np.float64)
  return dict(wq=get(state["query"]["kernel"]), wk=get(state["key"]["kernel"]),
              wv=get(state["value"]["kernel"]), wo=get(state["out"]["kernel"]),
              ck=get(state["compress_keys"]), cv=get(state["compress_values"]))


def make_layer(mem_blocks, compressed_len, rate, recon_weight=1.0, seed=0, random_compressor=True):
  layer = CompressiveAttention(D_MODEL, H, block_len=L, mem_blocks=mem_blocks,
                               compressed_len=compressed_len, rate=rate, recon_weight=recon_weight,
                               dtype=jnp.float32, rope_theta=THETA, rngs=nnx.Rngs(seed))
  if random_compressor:
    rng = np.random.default_rng(seed + 100)
    for name in ("compress_keys", "compress_values"):
      getattr(layer, name)[...] = jnp.asarray(rng.normal(size=(rate, D_MODEL, D_MODEL)) / D_MODEL ** 0.5,
                                              jnp.float32)
  return nnx.split(layer)


@functools.partial(jax.jit, static_argnums=0)
def run_layer(graphdef, state, x, memory, reset):
  """Block by block; returns (y [B, T, d], final memory, aux [B, N]) or aux None for XL."""
  b, t, d = x.shape
  n = t // L
  xs = (jnp.swapaxes(x.reshape(b, n, L, d), 0, 1), jnp.swapaxes(POSITIONS.reshape(b, n, L), 0, 1),
        jnp.zeros((n, b), bool).at[0].set(reset))

  def body(mem, inp):
    out = nnx.merge(graphdef, state)(inp[0], mem, positions=inp[1], reset=inp[2])
    y, mem, aux = out if len(out) == 3 else out + (jnp.zeros((b,)),)
    return mem, (y, aux)
  memory, (ys, aux) = jax.lax.scan(body, memory, xs)
  return jnp.swapaxes(ys, 0, 1).reshape(b, t, d), memory, jnp.swapaxes(aux, 0, 1)


def run_fresh(graphdef, state, x):
  memory = nnx.merge(graphdef, state).init_memory(x.shape[0])
  return run_layer(graphdef, state, jnp.asarray(x), memory, jnp.ones((x.shape[0],), bool))


def random_input(seed, b=B, t=T):
  return np.random.default_rng(seed).normal(size=(b, t, D_MODEL)).astype(np.float32)


def test_rate_one_identity_compressor_is_transformer_xl_over_the_longer_cache():
  """Rate 1 starts as the identity (mean pooling of one slot): XL cache of 1 block + 2 blocks of
  compressed memory == Transformer-XL with a 3-block cache, and the reconstruction loss is 0."""
  graphdef, state = make_layer(1, 2 * L, 1, random_compressor=False)
  np.testing.assert_array_equal(np.asarray(state["compress_keys"][...]), np.eye(D_MODEL)[None])
  xl = TransformerXLAttention(D_MODEL, H, block_len=L, mem_blocks=3, dtype=jnp.float32,
                              rope_theta=THETA, rngs=nnx.Rngs(7))
  for name in ("query", "key", "value", "out"):
    getattr(xl, name).kernel[...] = state[name]["kernel"][...]
  x = random_input(1)
  y, _, aux = run_fresh(graphdef, state, x)
  y_xl, _, _ = run_fresh(*nnx.split(xl), x)
  np.testing.assert_allclose(np.asarray(y), np.asarray(y_xl), atol=1e-6, rtol=1e-6)
  assert np.max(np.abs(np.asarray(aux))) < 1e-10
  # The compressed memory is used: XL with only its 1-block cache differs.
  xl1 = TransformerXLAttention(D_MODEL, H, block_len=L, mem_blocks=1, dtype=jnp.float32,
                               rope_theta=THETA, rngs=nnx.Rngs(7))
  for name in ("query", "key", "value", "out"):
    getattr(xl1, name).kernel[...] = state[name]["kernel"][...]
  y_xl1, _, _ = run_fresh(*nnx.split(xl1), x)
  assert np.max(np.abs(np.asarray(y_xl1) - np.asarray(y))) > 1e-3


@pytest.mark.parametrize("mem_blocks,compressed_len,rate", [(1, 4, 2), (2, 2, 4), (1, 2, 2)])
def test_layer_matches_numpy_reference(mem_blocks, compressed_len, rate):
  graphdef, state = make_layer(mem_blocks, compressed_len, rate, recon_weight=0.7)
  x = random_input(2)
  y, mem, aux = run_fresh(graphdef, state, x)
  y_ref, aux_ref = np_compressive(x, np_params(state), mem_blocks=mem_blocks,
                                  compressed_len=compressed_len, rate=rate, recon_weight=0.7)
  np.testing.assert_allclose(np.asarray(y), y_ref, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(aux), aux_ref, atol=1e-6, rtol=1e-4)
  assert np.all(aux_ref[:, mem_blocks:] > 0) and np.all(aux_ref[:, :mem_blocks] == 0)
  assert np.asarray(mem["compressed"]["valid"]).all()


@functools.lru_cache(maxsize=None)
def _decoder_grad_fn(tiny_cfg, recon_weight):
  cfg = tiny_cfg(attention="compressive",
                 compressive=dict(compressed_len=L, rate=2, recon_weight=recon_weight))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  loss = lambda p, batch: scan.mean_loss(p, graphdef, model.init_memory(B), batch, cfg)
  return params, jax.jit(jax.value_and_grad(loss, has_aux=True))


def _batch(weight):
  rng = np.random.default_rng(4)
  tokens = rng.integers(0, 32, size=(B, T + 1)).astype(np.int32)
  return {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:]),
          "weights": jnp.full((B, T), weight, jnp.float32)}


def test_reconstruction_loss_trains_only_the_compressor(tiny_cfg):
  """Token weights 0: the loss is the reconstruction loss alone, and only the compressor's two
  kernels get a gradient (stop-gradient on q, the old memory and the attention)."""
  params, grad_fn = _decoder_grad_fn(tiny_cfg, 1.0)
  (loss, (_, outs)), grads = grad_fn(params, _batch(0.0))
  np.testing.assert_allclose(float(loss), float(np.mean(np.asarray(outs["aux_loss"]))), rtol=1e-6)
  assert outs["aux_loss"].shape == (B, NUM_BLOCKS) and float(loss) > 0
  leaves = jax.tree_util.tree_flatten_with_path(grads)[0]
  for path, g in leaves:
    name = jax.tree_util.keystr(path)
    if "compress_" in name:
      assert np.max(np.abs(np.asarray(g))) > 1e-6, name
    else:
      np.testing.assert_array_equal(np.asarray(g), 0.0, err_msg=name)


def test_lm_loss_never_reaches_the_compressor(tiny_cfg):
  """recon_weight 0: the LM loss trains everything but the compressor (the compressed memory is
  stop-gradient), and the compressor is still used in the forward pass."""
  params, grad_fn = _decoder_grad_fn(tiny_cfg, 0.0)
  (loss, _), grads = grad_fn(params, _batch(1.0))
  attn = grads["layers"][0]["attention"]
  for name in ("compress_keys", "compress_values"):
    np.testing.assert_array_equal(np.asarray(attn[name]), 0.0)
  assert np.max(np.abs(np.asarray(attn["key"]["kernel"]))) > 1e-5
  zeroed = jax.tree.map(lambda a: a, params)
  zeroed["layers"][0]["attention"]["compress_values"] = jnp.zeros_like(
      params["layers"][0]["attention"]["compress_values"])
  (loss_zeroed, _), _ = grad_fn(zeroed, _batch(1.0))
  assert abs(float(loss_zeroed) - float(loss)) > 1e-5
