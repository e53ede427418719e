"""InfiniAttention (longctx.layers.infini) against a float64 numpy reference built from its weights.

Reference per block s (papers.md 3(a); decisions in longctx/layers/infini.py):
  Q, K, V = x W_Q, x W_K, x W_V split into heads            [B, L, H, D]
  A_dot = causal softmax(rope(Q) rope(K)^T / sqrt(D)) V      inside the block only
  A_mem = sigma(Q) M_{s-1} / (sigma(Q) z_{s-1} + eps)        un-rotated Q, then (M, z) updated
  A = sigmoid(beta_h) A_mem + (1 - sigmoid(beta_h)) A_dot    per head; y = concat_h(A) W_O
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.layers.infini import InfiniAttention
from longctx.models import scan
from longctx.models.decoder import Decoder
from longctx.ops import attention as attn_ops

D_MODEL, H = 16, 2
D = D_MODEL // H
L = 4
NUM_BLOCKS = 5
B = 2
T = L * NUM_BLOCKS
EPS = 1e-6
THETA = 10000.0
RULES = ["linear", "linear_delta"]


# ----------------------------------------------------------------------------- numpy reference

def np_sigma(x):
  return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def np_rope(x, positions, theta=THETA):
  """Rotate-half RoPE: pairs (i, i + D/2) rotated by angle p * theta^(-i / (D/2)).
  x [B, L, H, D]; positions [B, L]."""
  half = x.shape[-1] // 2
  out = np.empty_like(x)
  for i in range(half):
    angle = positions.astype(np.float64) * theta ** (-i / half)  # [B, L]
    c, s = np.cos(angle)[:, :, None], np.sin(angle)[:, :, None]
    a, b = x[..., i], x[..., i + half]
    out[..., i] = a * c - b * s
    out[..., i + half] = b * c + a * s
  return out


def np_causal_attention(q, k, v):
  """Token-by-token causal softmax attention. q, k, v [B, L, H, D] -> [B, L, H, D]."""
  b, l, h, d = q.shape
  out = np.zeros_like(v)
  for bi in range(b):
    for hi in range(h):
      for i in range(l):
        logits = np.array([q[bi, i, hi] @ k[bi, j, hi] for j in range(i + 1)]) / np.sqrt(d)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        out[bi, i, hi] = sum(p[j] * v[bi, j, hi] for j in range(i + 1))
  return out


def np_params(state):
  """float64 numpy copies of the layer's weights (nnx.Linear computes x @ kernel)."""
  get = lambda v: np.asarray(v[...], np.float64)
  return dict(wq=get(state["query"]["kernel"]), wk=get(state["key"]["kernel"]),
              wv=get(state["value"]["kernel"]), wo=get(state["out"]["kernel"]),
              beta=get(state["gate"]))


def np_infini(x, block_params, positions, rule, eps=EPS, memory=None):
  """x [B, T, d_model]; block_params: one weight dict per block (so a test can give the earlier
  blocks different W_K/W_V from the last one). Returns y [B, T, d_model] and the final (M, z)."""
  x = np.asarray(x, np.float64)
  b, t, _ = x.shape
  if memory is None:
    m, z = np.zeros((b, H, D, D)), np.zeros((b, H, D))
  else:
    m, z = (np.array(a, np.float64) for a in memory)
  ys = []
  for s in range(t // L):
    p = block_params[s]
    xs, pos = x[:, s * L:(s + 1) * L], positions[:, s * L:(s + 1) * L]
    q, k, v = ((xs @ p[w]).reshape(b, L, H, D) for w in ("wq", "wk", "wv"))
    sq, sk = np_sigma(q), np_sigma(k)
    a_mem = np.zeros_like(v)
    new_m, new_z = m.copy(), z.copy()
    for bi in range(b):
      for hi in range(H):
        mm, zz = m[bi, hi], z[bi, hi]
        a_mem[bi, :, hi] = (sq[bi, :, hi] @ mm) / (sq[bi, :, hi] @ zz + eps)[:, None]
        written = v[bi, :, hi]
        if rule == "linear_delta":
          written = written - (sk[bi, :, hi] @ mm) / (sk[bi, :, hi] @ zz + eps)[:, None]
        new_m[bi, hi] = mm + sk[bi, :, hi].T @ written
        new_z[bi, hi] = zz + sk[bi, :, hi].sum(axis=0)
    m, z = new_m, new_z
    a_dot = np_causal_attention(np_rope(q, pos), np_rope(k, pos), v)
    g = 1.0 / (1.0 + np.exp(-p["beta"]))  # [H]
    a = g[None, None, :, None] * a_mem + (1.0 - g[None, None, :, None]) * a_dot
    ys.append(a.reshape(b, L, H * D) @ p["wo"])
  return np.concatenate(ys, axis=1), (m, z)


# ----------------------------------------------------------------------------- code under test

def make_layer(rule, gate=(-0.7, 1.2), seed=0, compensated_sum=False):
  layer = InfiniAttention(D_MODEL, H, update_rule=rule, gate_init=0.0, eps=EPS, dtype=jnp.float32,
                          rope_theta=THETA, rngs=nnx.Rngs(seed), compensated_sum=compensated_sum)
  if gate is not None:  # distinct per-head gates, so a head-axis mix-up cannot pass
    layer.gate[...] = jnp.asarray(gate, jnp.float32)
  return nnx.split(layer)


@functools.partial(jax.jit, static_argnums=0)
def run_layer(graphdef, state, x, positions, memory, reset, stop_last_memory=False):
  """The layer over x [B, T, d_model] block by block (lax.scan: one compiled block, so the tests
  stay fast). reset [B] applies before the first block; stop_last_memory stop-gradients the memory
  carried into the last block. Returns y [B, T, d_model] and the final memory."""
  b, t, d = x.shape
  n = t // L
  xs = (jnp.swapaxes(x.reshape(b, n, L, d), 0, 1),             # [N, B, L, d_model]
        jnp.swapaxes(positions.reshape(b, n, L), 0, 1),        # [N, B, L]
        jnp.zeros((n, b), bool).at[0].set(reset),              # [N, B]
        jnp.arange(n))

  def body(mem, inp):
    x_blk, pos_blk, reset_blk, index = inp
    cut = stop_last_memory & (index == n - 1)
    mem = jax.tree.map(lambda m: jnp.where(cut, jax.lax.stop_gradient(m), m), mem)
    y, mem = nnx.merge(graphdef, state)(x_blk, mem, positions=pos_blk, reset=reset_blk)
    return mem, y

  memory, ys = jax.lax.scan(body, memory, xs)
  return jnp.swapaxes(ys, 0, 1).reshape(b, t, d), memory


def fresh_memory(graphdef, state, b=B):
  return nnx.merge(graphdef, state).init_memory(b)


def run_fresh(graphdef, state, x, positions=None):
  b, t = x.shape[:2]
  positions = POSITIONS[:b, :t] if positions is None else positions
  return run_layer(graphdef, state, jnp.asarray(x), jnp.asarray(positions),
                   fresh_memory(graphdef, state, b), jnp.ones((b,), bool))


def random_input(seed, b=B, t=T):
  return np.random.default_rng(seed).normal(size=(b, t, D_MODEL)).astype(np.float32)


# [B, T]: absolute positions, a different offset per example.
POSITIONS = np.stack([np.arange(T) + 3, np.arange(T) + 41]).astype(np.int32)


# ----------------------------------------------------------------------------- tests

def test_numpy_rope_matches_rotate_half_convention():
  """Self-check of the reference RoPE: a 2-d rotation of each pair (i, i+D/2), norm-preserving,
  and q.k after rotation depends only on the position difference."""
  rng = np.random.default_rng(0)
  q, k = rng.normal(size=(2, 1, 1, 1, D))
  pos = lambda p: np.array([[p]])
  rq, rk = np_rope(q, pos(7)), np_rope(k, pos(3))
  np.testing.assert_allclose(np.linalg.norm(rq), np.linalg.norm(q), rtol=1e-12)
  np.testing.assert_allclose(np.sum(rq * rk), np.sum(np_rope(q, pos(14)) * np_rope(k, pos(10))),
                             rtol=1e-10)
  # Pair 0 turns by exactly the position (frequency theta^0 = 1).
  np.testing.assert_allclose(np_rope(np.eye(D)[0][None, None, None], pos(1))[0, 0, 0, [0, D // 2]],
                             [np.cos(1.0), np.sin(1.0)], rtol=1e-12)


@pytest.mark.parametrize("first_position", [0, 1, 4097])
def test_rope_pair_and_rope_equal_the_numpy_reference(first_position):
  """ops.attention.rope / rope_pair (tables computed once, under a conditional on CPU whose two
  branches are the same function) against np_rope, under jit and its gradient; an odd and an even
  first position take the two branches."""
  rng = np.random.default_rng(1)
  q, k = (rng.normal(size=(2, 5, H, D)).astype(np.float32) for _ in range(2))
  positions = (np.arange(5)[None] + np.array([[first_position], [first_position + 17]])).astype(np.int32)
  rq, rk = jax.jit(attn_ops.rope_pair)(q, k, positions)
  tol = dict(atol=1e-4, rtol=1e-5)  # float32 angles at positions ~4K round by ~1e-5 rad
  np.testing.assert_allclose(np.asarray(rq), np_rope(q, positions), **tol)
  np.testing.assert_allclose(np.asarray(rk), np_rope(k, positions), **tol)
  np.testing.assert_allclose(np.asarray(jax.jit(attn_ops.rope)(q, positions)), np.asarray(rq), atol=0)
  # RoPE is a rotation: the gradient of sum(rope(x) * g) is the inverse rotation of g.
  g = rng.normal(size=q.shape).astype(np.float32)
  grad = jax.grad(lambda x: jnp.sum(attn_ops.rope(x, positions) * g))(q)
  np.testing.assert_allclose(np.asarray(grad), np_rope(g, -positions.astype(np.int64)), **tol)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("compensated_sum", [True, False])
def test_layer_matches_numpy_reference(rule, compensated_sum):
  """Both ways of summing the memory (plain float32, the default, and Kahan) follow the equations;
  the Kahan state carries its error terms, the plain one does not."""
  graphdef, state = make_layer(rule, compensated_sum=compensated_sum)
  x = random_input(1)
  y, mem = run_fresh(graphdef, state, x)
  expected_keys = {"memory", "norm"} | ({"memory_error", "norm_error"} if compensated_sum else set())
  assert set(mem) == expected_keys
  p = np_params(state)
  y_ref, (m_ref, z_ref) = np_infini(x, [p] * NUM_BLOCKS, POSITIONS, rule)
  np.testing.assert_allclose(np.asarray(y), y_ref, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(mem["memory"]), m_ref, atol=1e-4, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(mem["norm"]), z_ref, atol=1e-4, rtol=1e-5)
  # The memory path matters: the reference with the memory read switched off differs.
  p_local = dict(p, beta=np.full(H, -np.inf))
  y_local, _ = np_infini(x, [p_local] * NUM_BLOCKS, POSITIONS, rule)
  assert np.max(np.abs(y_local[:, L:] - y_ref[:, L:])) > 1e-2


@functools.partial(jax.jit, static_argnums=0)
def _last_block_grad(graphdef, state, x, cotangent, stop_last_memory):
  """Gradient of sum(y_last * c), a linear probe of the last block's output, w.r.t. the params."""
  def loss(state):
    y, _ = run_layer(graphdef, state, x, jnp.asarray(POSITIONS), fresh_memory(graphdef, state),
                     jnp.ones((B,), bool), stop_last_memory)
    return jnp.sum(y[:, -L:] * cotangent)
  return jax.grad(loss)(state)


def _np_last_block_loss(x, block_params, cotangent, rule):
  y, _ = np_infini(x, block_params, POSITIONS, rule)
  return float(np.sum(y[:, -L:] * cotangent))


@pytest.mark.parametrize("rule", RULES)
def test_gradient_reaches_wk_wv_through_memory(rule):
  """dL_last/dW through M_{s-1} = (gradient with BPTT) - (gradient with the carried memory
  stop-gradiented), which must equal the derivative of the numpy loss w.r.t. the W_K/W_V used by
  the EARLIER blocks only (the last block keeps its own W_K/W_V fixed). Memory-heavy gate."""
  graphdef, state = make_layer(rule, gate=(3.0, 2.0))
  x = random_input(2)
  c = np.random.default_rng(3).normal(size=(B, L, D_MODEL))  # [B, L, d_model]
  g_full = _last_block_grad(graphdef, state, x, c, False)
  g_cut = _last_block_grad(graphdef, state, x, c, True)
  p = np_params(state)
  rng = np.random.default_rng(4)
  for name, w in (("key", "wk"), ("value", "wv")):
    through_memory = np.asarray(g_full[name]["kernel"][...] - g_cut[name]["kernel"][...], np.float64)
    full_norm = np.linalg.norm(np.asarray(g_full[name]["kernel"][...]))
    assert np.linalg.norm(through_memory) > 0.05 * full_norm, name
    delta = rng.normal(size=p[w].shape)
    eps = 1e-5
    def f(sign):
      early = dict(p, **{w: p[w] + sign * eps * delta})
      return _np_last_block_loss(x, [early] * (NUM_BLOCKS - 1) + [p], c, rule)
    fd = (f(1) - f(-1)) / (2 * eps)
    np.testing.assert_allclose(np.sum(through_memory * delta), fd, rtol=1e-3, atol=1e-4)
  # W_Q only reads: the earlier blocks' W_Q never reaches the last block's loss.
  np.testing.assert_array_equal(np.asarray(g_full["query"]["kernel"][...]),
                                np.asarray(g_cut["query"]["kernel"][...]))
  # The gate gets the full gradient (it mixes in A_mem read from earlier blocks' writes).
  beta_delta = np.array([0.6, -1.1])
  fd_gate = (_np_last_block_loss(x, [dict(p, beta=p["beta"] + 1e-5 * beta_delta)] * NUM_BLOCKS,
                                 c, rule)
             - _np_last_block_loss(x, [dict(p, beta=p["beta"] - 1e-5 * beta_delta)] * NUM_BLOCKS,
                                   c, rule)) / 2e-5
  np.testing.assert_allclose(np.sum(np.asarray(g_full["gate"][...]) * beta_delta), fd_gate,
                             rtol=1e-3, atol=1e-5)


def test_gate_gradient_not_negligible_at_default_init(tiny_cfg):
  """gate_init = 0 (sigmoid 0.5): the decoder's mean loss moves every head's gate (> 1e-4)."""
  cfg = tiny_cfg(attention="infini", block_len=4)
  graphdef, params = nnx.split(Decoder(cfg, nnx.Rngs(0)))
  tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, size=(2, 5 * 4 + 1))
  batch = {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:])}
  memory = Decoder(cfg, nnx.Rngs(0)).init_memory(2)
  loss = lambda p: scan.mean_loss(p, graphdef, memory, batch, cfg)
  grads, _ = jax.jit(jax.grad(loss, has_aux=True))(params)
  gate_grad = np.asarray(grads["layers"][0]["attention"]["gate"][...])
  assert np.all(np.asarray(params["layers"][0]["attention"]["gate"][...]) == 0.0)
  assert np.all(np.abs(gate_grad) > 1e-4), gate_grad


@pytest.mark.parametrize("rule", RULES)
def test_examples_in_a_batch_do_not_leak(rule):
  """Changing example 1 in every block leaves example 0's outputs and memory bit-identical."""
  graphdef, state = make_layer(rule)
  x = random_input(5)
  x2 = x.copy()
  x2[1] = random_input(6, b=1)[0]
  (y, mem), (y2, mem2) = run_fresh(graphdef, state, x), run_fresh(graphdef, state, x2)
  np.testing.assert_array_equal(np.asarray(y[0]), np.asarray(y2[0]))
  for key in ("memory", "norm"):
    np.testing.assert_array_equal(np.asarray(mem[key][0]), np.asarray(mem2[key][0]))
  assert np.max(np.abs(np.asarray(y[1] - y2[1]))) > 1e-3


def test_decoder_examples_do_not_leak(tiny_cfg):
  """Through the scan driver (2 layers): changing example 1's tokens leaves example 0's losses and
  every layer's memory for example 0 bit-identical."""
  cfg = tiny_cfg(attention="infini", num_layers=2, block_len=L,
                 infini=dict(update_rule="linear_delta"))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  rng = np.random.default_rng(9)
  tokens = rng.integers(0, cfg.vocab_size, size=(B, T + 1))  # [B, T + 1]
  changed = tokens.copy()
  changed[1] = rng.integers(0, cfg.vocab_size, size=T + 1)
  run = jax.jit(lambda tokens: scan.run_blocks(
      graphdef, params, model.init_memory(B), {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]},
      cfg))
  (mem, outs), (mem2, outs2) = run(tokens), run(changed)
  np.testing.assert_array_equal(np.asarray(outs["loss"][0]), np.asarray(outs2["loss"][0]))
  for layer, layer2 in zip(mem, mem2):
    for key in ("memory", "norm"):
      np.testing.assert_array_equal(np.asarray(layer[key][0]), np.asarray(layer2[key][0]))
  assert np.max(np.abs(np.asarray(outs["loss"][1] - outs2["loss"][1]))) > 1e-3


@pytest.mark.parametrize("rule", RULES)
def test_reset_clears_memory(rule):
  """reset[b]=True gives example b exactly what a fresh memory gives; reset=False keeps it."""
  graphdef, state = make_layer(rule)
  x, positions = jnp.asarray(random_input(7)), jnp.asarray(POSITIONS)
  _, carried = run_fresh(graphdef, state, random_input(8))  # a used memory, 5 blocks written
  run = lambda mem, reset: run_layer(graphdef, state, x, positions, mem, jnp.asarray(reset))
  y_reset, mem_reset = run(carried, [True, False])
  y_fresh, mem_fresh = run(fresh_memory(graphdef, state), [False, False])
  y_kept, mem_kept = run(carried, [False, False])
  np.testing.assert_array_equal(np.asarray(y_reset[0]), np.asarray(y_fresh[0]))
  np.testing.assert_array_equal(np.asarray(y_reset[1]), np.asarray(y_kept[1]))
  for key in ("memory", "norm"):
    np.testing.assert_array_equal(np.asarray(mem_reset[key][0]), np.asarray(mem_fresh[key][0]))
    np.testing.assert_array_equal(np.asarray(mem_reset[key][1]), np.asarray(mem_kept[key][1]))
  # The carried memory did matter, so the reset is observable.
  assert np.max(np.abs(np.asarray(y_fresh[0] - y_kept[0]))) > 1e-3
  # And the numpy reference (fresh memory) agrees with the reset example.
  y_ref, _ = np_infini(np.asarray(x), [np_params(state)] * NUM_BLOCKS, POSITIONS, rule)
  np.testing.assert_allclose(np.asarray(y_reset[0]), y_ref[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rule,dtype", [("linear", "float32"), ("linear_delta", "float32"),
                                        ("linear_delta", "bfloat16")])
def test_memory_stays_finite_over_1000_blocks(tiny_cfg, rule, dtype):
  """8000 random tokens in 1000 blocks of 8 through the scan driver: memory and losses finite."""
  cfg = tiny_cfg(attention="infini", block_len=8, dtype=dtype, infini=dict(update_rule=rule))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, size=(1, 8001))
  batch = {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:])}
  run = jax.jit(lambda p, mem, batch: scan.run_blocks(graphdef, p, mem, batch, cfg))
  memory, outs = run(params, model.init_memory(1), batch)
  mem = memory[0]
  assert mem["memory"].dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(mem["memory"])))
  assert np.all(np.isfinite(np.asarray(mem["norm"])))
  assert np.all(np.isfinite(np.asarray(outs["loss"])))
  assert outs["loss"].shape == (1, 8000)
  # Non-vacuous: 8000 keys were written (each sigma(k) > 0 adds to z).
  assert float(np.min(np.asarray(mem["norm"]).sum(-1))) > 1000.0


def test_decoder_passes_write_weights_to_the_memory(tiny_cfg):
  """batch['write_weights'] reaches every Infini layer's memory write: ones change nothing (bit
  for bit), a weight of 3 on the first block equals writing that block three times (its final
  z per layer is the unweighted one plus twice the first block's sum of sigma(K)), and it changes
  the later blocks' losses."""
  cfg = tiny_cfg(attention="infini", num_layers=2, block_len=L, infini=dict(update_rule="linear"))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  tokens = np.random.default_rng(11).integers(0, cfg.vocab_size, size=(B, T + 1))
  batch = {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:])}
  run = jax.jit(lambda batch: scan.run_blocks(graphdef, params, model.init_memory(B), batch, cfg))
  mem, outs = run(batch)
  mem1, outs1 = run(dict(batch, write_weights=jnp.ones((B, T))))
  np.testing.assert_array_equal(np.asarray(outs["loss"]), np.asarray(outs1["loss"]))
  first = jnp.ones((B, T)).at[:, :L].set(3.0)
  mem3, outs3 = run(dict(batch, write_weights=first))
  # Block 1 reads M after block 0: its losses change; block 0's cannot (retrieval before update).
  np.testing.assert_array_equal(np.asarray(outs["loss"][:, :L]), np.asarray(outs3["loss"][:, :L]))
  assert np.max(np.abs(np.asarray(outs["loss"][:, L:] - outs3["loss"][:, L:]))) > 1e-4
  # Layer 0's z: block 0's keys do not depend on the memory, so the difference is exactly
  # 2 sum_t sigma(K_t) over block 0 of layer 0 = what one more copy of block 0, written twice, adds.
  mem_first, _ = jax.jit(lambda batch: scan.run_blocks(graphdef, params, model.init_memory(B), batch,
                                                       cfg))({k: v[:, :L] for k, v in batch.items()})
  np.testing.assert_allclose(np.asarray(mem3[0]["norm"] - mem[0]["norm"]),
                             2.0 * np.asarray(mem_first[0]["norm"]), rtol=1e-5, atol=1e-4)


def test_compensated_sum_config_reaches_every_layer(tiny_cfg):
  """model.infini.compensated_sum switches every layer's memory to Kahan sums (error terms in the
  carried state); the outputs of the two agree to float32 rounding over a short stream."""
  tokens = np.random.default_rng(5).integers(0, 256, size=(1, 65))
  batch = {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:])}
  losses = {}
  for compensated in (False, True):
    cfg = tiny_cfg(attention="infini", block_len=8, infini=dict(compensated_sum=compensated))
    model = Decoder(cfg, nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    memory, outs = scan.run_blocks(graphdef, params, model.init_memory(1), batch, cfg)
    for layer_memory in memory:
      assert ("memory_error" in layer_memory) == compensated
      assert ("norm_error" in layer_memory) == compensated
    losses[compensated] = np.asarray(outs["loss"])
  np.testing.assert_allclose(losses[True], losses[False], rtol=1e-5, atol=1e-6)
