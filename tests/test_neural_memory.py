"""longctx.ops.neural_memory against float64 numpy references (tests/titans_reference.py):
token-by-token online GD (chunk 1), the sequential mini-batch definition (chunk b), the delta
rule (linear memory, no momentum, no decay, constant theta), a division-free scan where
cumulative products underflow, gradients through earlier chunks, and 1,000 chunks staying finite."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import titans_reference as ref
from longctx.ops import neural_memory as nm

D = 4


def random_problem(seed, t, depth, expansion=2, gate_scale=1.0):
  rng = np.random.default_rng(seed)
  dims = [D] + [D * expansion] * (depth - 1) + [D]
  ws = [rng.normal(size=(i, o)) / np.sqrt(i) for i, o in zip(dims[:-1], dims[1:])]
  ss = [0.1 * rng.normal(size=w.shape) for w in ws]  # a non-zero carried momentum
  unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)
  keys, queries = unit(rng.normal(size=(t, D))), unit(rng.normal(size=(t, D)))
  values = rng.normal(size=(t, D))
  theta = 0.2 * ref.sigmoid(gate_scale * rng.normal(size=t))
  eta = ref.sigmoid(gate_scale * rng.normal(size=t))
  alpha = 0.3 * ref.sigmoid(gate_scale * rng.normal(size=t))
  return ws, ss, keys, values, queries, theta, eta, alpha


def run_ops(problem, chunk):
  ws, ss, *arrays = problem
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  fn = jax.jit(lambda w, s, *a: nm.memory_forward(w, s, *a, chunk_size=chunk))
  y, w, s = fn(tuple(map(f32, ws)), tuple(map(f32, ss)), *map(f32, arrays))
  return np.asarray(y), [np.asarray(a) for a in w], [np.asarray(a) for a in s]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_chunk_one_is_token_by_token_online_gradient_descent(depth):
  problem = random_problem(0, 12, depth)
  y, w, s = run_ops(problem, chunk=1)
  y_ref, w_ref, s_ref = ref.memory_sequential(*problem, chunk=1)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  for a, b in zip(w + s, w_ref + s_ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("depth,chunk", [(1, 4), (2, 4), (2, 3)])
def test_chunk_b_is_sequential_minibatch_gradient_descent(depth, chunk):
  # Several chunks: the gradients of chunk n must be taken at the weights chunk n-1 left (a
  # memory whose surprise is always taken at W_0, implementations.md 1.1, fails from chunk 2 on).
  problem = random_problem(1, 12, depth)
  y, w, s = run_ops(problem, chunk=chunk)
  y_ref, w_ref, s_ref = ref.memory_sequential(*problem, chunk=chunk)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  for a, b in zip(w + s, w_ref + s_ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  # ... and the chunking is not a no-op: token-by-token gives other reads.
  y_online, _, _ = ref.memory_sequential(*problem, chunk=1)
  assert np.abs(y_ref - y_online).max() > 1e-3


def test_surprise_at_initial_weights_is_caught():
  """The reference distinguishes 'gradient at the chunk-start weights' from 'always at W_0'."""
  ws, ss, k, v, q, theta, eta, alpha = random_problem(2, 8, 2)
  y, _, _ = run_ops((ws, ss, k, v, q, theta, eta, alpha), chunk=2)
  y_w0, _, _ = ref.memory_sequential(ws, ss, k, v, q, theta, eta, alpha, chunk=10 ** 6)
  assert np.abs(y - y_w0).max() > 1e-3


def test_linear_memory_without_momentum_and_decay_is_the_delta_rule():
  rng = np.random.default_rng(3)
  t, c = 10, 0.3
  unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)
  k, q, v = unit(rng.normal(size=(t, D))), rng.normal(size=(t, D)), rng.normal(size=(t, D))
  w0 = rng.normal(size=(D, D))
  zeros = np.zeros(t)
  problem = ([w0], [np.zeros((D, D))], k, v, q, np.full(t, c), zeros, zeros)
  y, (w,), _ = run_ops(problem, chunk=1)
  # The loss ||kW - v||^2 has gradient 2 k^T (kW - v): one step is the delta rule with beta = 2c.
  y_ref, s_ref = ref.delta_rule(w0, k, v, q, beta=2 * c)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(w, s_ref, rtol=1e-5, atol=1e-5)


def test_linear_recurrence_has_no_underflowing_cumulative_products():
  # 600 decays of 0.2: prod_j decay_j = 0.2^600 = 0 in float32 (and in float64), so any form that
  # divides by cumulative products (eq. 16's beta_t / beta_i) gives inf/NaN; ours must not.
  t = 600
  rng = np.random.default_rng(4)
  decay = np.full(t, 0.2)
  inputs = rng.normal(size=(t, 3))
  h0 = rng.normal(size=3)
  out = np.asarray(jax.jit(nm.linear_recurrence)(jnp.asarray(decay, jnp.float32),
                                                 jnp.asarray(inputs, jnp.float32),
                                                 jnp.asarray(h0, jnp.float32)))
  h, expected = h0, []
  for a, x in zip(decay, inputs):
    h = a * h + x
    expected.append(h)
  assert np.isfinite(out).all()
  np.testing.assert_allclose(out, np.stack(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("unroll", [2, 4])
def test_unrolled_chunk_loop_computes_the_same_reads_weights_and_gradients(unroll):
  # 6 chunks of 2: unroll 2 divides them, 4 leaves a remainder for lax.scan to handle.
  ws, ss, *arrays = random_problem(3, 12, depth=2)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  ws, ss, arrays = tuple(map(f32, ws)), tuple(map(f32, ss)), list(map(f32, arrays))

  def loss(keys, n):
    y, w, _ = nm.memory_forward(ws, ss, keys, *arrays[1:], chunk_size=2, unroll=n)
    return jnp.sum(y ** 2) + sum(jnp.sum(a) for a in w), (y, w)
  (_, (y1, w1)), g1 = jax.jit(jax.value_and_grad(lambda k: loss(k, 1), has_aux=True))(arrays[0])
  (_, (yn, wn)), gn = jax.jit(jax.value_and_grad(lambda k: loss(k, unroll), has_aux=True))(arrays[0])
  for a, b in zip((y1, g1) + tuple(w1), (yn, gn) + tuple(wn)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
  # the reference agrees too, so both are the chunked memory and not a shared mistake
  y_ref, _, _ = ref.memory_sequential(*random_problem(3, 12, depth=2), chunk=2)
  np.testing.assert_allclose(np.asarray(yn), y_ref, rtol=1e-5, atol=1e-5)


def test_gradients_flow_from_later_reads_into_earlier_chunks_keys_values_and_gates():
  ws, ss, k, v, q, theta, eta, alpha = (
      tuple(jnp.asarray(a, jnp.float32) for a in x) if isinstance(x, list) else
      jnp.asarray(x, jnp.float32) for x in random_problem(5, 12, 2))

  def last_chunk_read(k, v, theta, eta, alpha, w0):
    y, _, _ = nm.memory_forward(w0, ss, k, v, q, theta, eta, alpha, chunk_size=4)
    return jnp.sum(y[8:] ** 2)

  grads = jax.grad(last_chunk_read, argnums=(0, 1, 2, 3, 4, 5))(k, v, theta, eta, alpha, ws)
  for name, g in zip(("keys", "values", "theta", "eta", "alpha"), grads[:5]):
    assert np.abs(np.asarray(g)[:4]).max() > 1e-6, f"no gradient reaches chunk 1's {name}"
  assert all(np.abs(np.asarray(g)).max() > 1e-6 for g in grads[5]), "no gradient into W_0"


def test_examples_and_heads_keep_separate_memories():
  rng = np.random.default_rng(6)
  b, h, t = 2, 2, 8
  w = (jnp.asarray(rng.normal(size=(b, h, D, D)), jnp.float32),)
  s = (jnp.zeros((b, h, D, D)),)
  arr = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
  k, v, q = arr(b, h, t, D), arr(b, h, t, D), arr(b, h, t, D)
  gates = [jnp.full((b, h, t), g) for g in (0.1, 0.5, 0.1)]
  fn = jax.jit(lambda k: nm.batched_memory_forward(w, s, k, v, q, *gates, chunk_size=2)[0])
  base = np.asarray(fn(k))
  moved = np.asarray(fn(k.at[1, 0].multiply(-3.0)))   # change example 1, head 0 only
  np.testing.assert_array_equal(moved[0], base[0])
  np.testing.assert_array_equal(moved[1, 1], base[1, 1])
  assert np.abs(moved[1, 0] - base[1, 0]).max() > 1e-4


def test_memory_stays_finite_over_a_thousand_chunks():
  rng = np.random.default_rng(7)
  t, chunk = 2000, 2
  ws, ss, k, v, q, theta, eta, alpha = random_problem(8, t, 2, gate_scale=3.0)
  theta = 0.1 * ref.sigmoid(3.0 * rng.normal(size=t))  # the default max_lr
  y, w, s = run_ops((ws, ss, k, v, q, theta, eta, alpha), chunk=chunk)
  assert np.isfinite(y).all() and all(np.isfinite(a).all() for a in w + s)
  assert max(np.abs(a).max() for a in w) < 1e3


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("momentum_off", [False, True])
def test_matmul_form_equals_materialised_per_token_weights(depth, momentum_off):
  """chunk_read_update (reads via [b, b] coefficient matrices, no per-token W_t) equals the
  materialised form: chunk_update's per-token W_t from vmap(grad) and the associative scans, then
  M(q_t; W_t) token by token. eta = 0 (momentum off) included: the coefficients must not divide."""
  ws, ss, k, v, q, theta, eta, alpha = random_problem(7 + depth, 16, depth)
  if momentum_off:
    eta = np.zeros_like(eta)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  ws, ss = tuple(map(f32, ws)), tuple(map(f32, ss))
  k, v, q, theta, eta, alpha = map(f32, (k, v, q, theta, eta, alpha))
  reads, w_end, s_end = jax.jit(nm.chunk_read_update)(ws, ss, k, v, q, theta, eta, alpha)
  w_tok, s_tok = jax.jit(nm.chunk_update)(ws, ss, k, v, theta, eta, alpha)
  expected = jax.vmap(nm.memory_apply)(w_tok, q)
  np.testing.assert_allclose(np.asarray(reads), np.asarray(expected), atol=2e-5, rtol=1e-4)
  for got, want in zip(w_end + s_end, tuple(a[-1] for a in w_tok) + tuple(a[-1] for a in s_tok)):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("momentum_off", [False, True])
def test_chunk_coefficients_equal_the_recurrences_stepped_one_token_at_a_time(momentum_off):
  """chunk_coefficients (closed form in float32) against the recurrences of their definition
  stepped token by token in numpy float64: E[t] = eta_t E[t-1] + theta_t e_t,
  C[t] = (1 - alpha_t) C[t-1] + E[t], c_t = (1 - alpha_t) c_{t-1} + p_t. eta = 0 must be exact,
  and the gradient through them finite (no division by a product of gates)."""
  b = 12
  _, _, _, _, _, theta, eta, alpha = random_problem(3, b, 1)
  if momentum_off:
    eta = np.zeros_like(eta)
  a_ref, p_ref, c_ref = np.ones(b), np.ones(b), np.zeros(b)
  big_c_ref, big_e_ref = np.zeros((b, b)), np.zeros((b, b))
  a, p, c, row_c, row_e = 1.0, 1.0, 0.0, np.zeros(b), np.zeros(b)
  for t in range(b):
    row_e = eta[t] * row_e + theta[t] * np.eye(b)[t]
    p = eta[t] * p
    a, c, row_c = (1 - alpha[t]) * a, (1 - alpha[t]) * c + p, (1 - alpha[t]) * row_c + row_e
    a_ref[t], p_ref[t], c_ref[t], big_c_ref[t], big_e_ref[t] = a, p, c, row_c, row_e
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  got = jax.jit(nm.chunk_coefficients)(f32(theta), f32(eta), f32(alpha))
  for g, want in zip(got, (a_ref, p_ref, c_ref, big_c_ref, big_e_ref)):
    np.testing.assert_allclose(np.asarray(g), want, atol=1e-6, rtol=1e-5)
  grads = jax.grad(lambda *x: sum(jnp.sum(o) for o in nm.chunk_coefficients(*x)),
                   argnums=(0, 1, 2))(f32(theta), f32(eta), f32(alpha))
  assert all(np.isfinite(np.asarray(g)).all() for g in grads)


def test_default_gate_ceiling_keeps_a_repeated_token_finite_and_the_old_one_diverges():
  """Stability of the inner loop (no clip) at the config's defaults: one token repeated 8,192 times (a chunk
  of 16 identical tokens sums 16 equal gradients; momentum multiplies by up to 1 / (1 - eta)),
  depth-2 memory of head dim 32, theta at its ceiling `max_lr` (sigmoid saturated), eta and alpha
  at their initial values. The default ceiling stays finite; 0.1, the former default under which
  MAC and MAG hit NaN losses in training on S-NIAH, diverges."""
  from longctx import config as config_lib
  opts = config_lib.base_config().model.titans
  d, hidden, t = 32, 32 * opts.memory_expansion, 8192
  rng = np.random.default_rng(0)
  ws = (rng.normal(size=(d, hidden)) / np.sqrt(d), rng.normal(size=(hidden, d)) / np.sqrt(hidden))
  unit = lambda a: a / np.linalg.norm(a)
  key, value = unit(rng.normal(size=d)), unit(rng.normal(size=d))
  eta, alpha = ref.sigmoid(opts.eta_bias), ref.sigmoid(opts.alpha_bias)

  def finite(theta):
    problem = (ws, [np.zeros_like(w) for w in ws], np.tile(key, (t, 1)), np.tile(value, (t, 1)),
               np.tile(key, (t, 1)), np.full(t, theta), np.full(t, eta), np.full(t, alpha))
    y, w, _ = run_ops(problem, chunk=16)
    return bool(np.isfinite(y).all() and all(np.isfinite(a).all() for a in w))

  assert finite(opts.max_lr)
  assert not finite(0.1)


def _token_gradient_norms(problem, chunk):
  """Norms of every token's gradient at its chunk-start weights (numpy reference, no clip)."""
  ws, ss, keys, values, queries, theta, eta, alpha = problem
  norms, w_now, s_now = [], [np.array(w) for w in ws], [np.array(s) for s in ss]
  for t in range(len(keys)):
    if t % chunk == 0:
      start = [w.copy() for w in w_now]
    grads = ref.mlp_grad(start, keys[t], values[t])
    norms.append(np.sqrt(sum(np.sum(g ** 2) for g in grads)))
    s_now = [eta[t] * s - theta[t] * g for s, g in zip(s_now, grads)]
    w_now = [(1.0 - alpha[t]) * w + s for w, s in zip(w_now, s_now)]
  return np.array(norms)


def assert_both_forms_match_the_sequential_definition(problem, chunk, max_grad_norm=0.0,
                                                      anchor=None):
  """The matmul form (memory_forward, every chunk) and the materialised form (chunk_update, the
  first chunk) against the numpy loop with the same options; returns the loop's reads."""
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  tree = lambda xs: tuple(map(f32, xs))
  opts = dict(max_grad_norm=max_grad_norm, anchor=anchor)
  y_ref, w_ref, s_ref = ref.memory_sequential(*problem, chunk=chunk, **opts)
  ws, ss, *arrays = problem
  anchor32 = None if anchor is None else tree(anchor)
  fn = jax.jit(lambda w, s, a, *x: nm.memory_forward(w, s, *x, chunk_size=chunk,
                                                      max_grad_norm=max_grad_norm, anchor=a))
  y, w, s = fn(tree(ws), tree(ss), anchor32, *map(f32, arrays))
  np.testing.assert_allclose(np.asarray(y), y_ref, rtol=1e-5, atol=1e-5)
  for a, b in zip(w + s, w_ref + s_ref):
    np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5)
  k, v, theta, eta, alpha = (f32(problem[i])[:chunk] for i in (2, 3, 5, 6, 7))
  update = functools.partial(nm.chunk_update, max_grad_norm=max_grad_norm, anchor=anchor32)
  w_tok, s_tok = jax.jit(update)(tree(ws), tree(ss), k, v, theta, eta, alpha)
  _, w_first, s_first = ref.memory_sequential(
      *[a[:chunk] if i >= 2 else a for i, a in enumerate(problem)], chunk=chunk, **opts)
  for a, b in zip(tuple(x[-1] for x in w_tok + s_tok), w_first + s_first):
    np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5)
  return y_ref


@pytest.mark.parametrize("depth,chunk", [(1, 4), (2, 4), (2, 1)])
def test_inner_gradient_clip_equals_the_sequential_definition(depth, chunk):
  """max_grad_norm: each token's gradient (all layers together) rescaled to norm <= c before the
  momentum. The matmul form (which never forms a gradient: it scales the rank-one factor delta)
  and the materialised form both equal the numpy loop; c at the median norm, so about half the
  tokens are clipped and the clip is not a no-op."""
  problem = random_problem(11, 12, depth)
  clip = float(np.median(_token_gradient_norms(problem, chunk)))
  y_ref = assert_both_forms_match_the_sequential_definition(problem, chunk, max_grad_norm=clip)
  y_unclipped, _, _ = ref.memory_sequential(*problem, chunk=chunk)
  assert np.abs(y_ref - y_unclipped).max() > 1e-3


@pytest.mark.parametrize("depth,chunk", [(1, 1), (2, 4), (2, 3)])
def test_forgetting_towards_an_anchor_is_the_sequential_definition(depth, chunk):
  """anchor Wbar (model.titans.forget_to='initial'): W_t = (1 - alpha_t) W_{t-1} + alpha_t Wbar +
  S_t. Both forms against the numpy loop; and the anchor is not a no-op (eq. 13's forgetting
  towards 0 gives other reads)."""
  problem = random_problem(13, 12, depth)
  rng = np.random.default_rng(14)
  anchor = [rng.normal(size=w.shape) / np.sqrt(w.shape[0]) for w in problem[0]]
  y_ref = assert_both_forms_match_the_sequential_definition(problem, chunk, anchor=anchor)
  y_zero, _, _ = ref.memory_sequential(*problem, chunk=chunk)
  assert np.abs(y_ref - y_zero).max() > 1e-3


def test_anchored_memory_without_writes_relaxes_to_the_anchor():
  """theta = 0 and no momentum: the memory does nothing but forget, so W_T - Wbar = prod(1 -
  alpha) (W_0 - Wbar): under eq. 13 the learned initial memory is erased, anchored it stays."""
  ws, _, k, v, q, _, _, alpha = random_problem(15, 64, 2)
  zeros = lambda a: np.zeros_like(a)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  tree = lambda xs: tuple(map(f32, xs))
  run = lambda anchor: nm.memory_forward(tree(ws), tree(map(zeros, ws)), *map(f32, (
      k, v, q, zeros(alpha), zeros(alpha), alpha)), chunk_size=8, anchor=anchor)
  _, w_zero, _ = run(None)
  _, w_anchor, _ = run(tree(ws))
  keep = np.prod(1.0 - alpha)
  for w0, wz, wa in zip(ws, w_zero, w_anchor):
    np.testing.assert_allclose(np.asarray(wz), keep * w0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(wa), w0, rtol=1e-5, atol=1e-6)
  assert keep < 1e-2   # eq. 13 really erased it


def test_inner_gradient_clip_keeps_a_diverging_memory_finite():
  """Heavy momentum on one repeated token (theta 0.1, eta 0.9: diverges without a clip, as in
  the test above) stays finite and fits the pair with each token's gradient clipped to norm 1 (median
  squared error of the last 1,024 reads 0.02, against ~1-2 at the first read)."""
  d, hidden, t = 32, 64, 4096
  rng = np.random.default_rng(0)
  ws = (rng.normal(size=(d, hidden)) / np.sqrt(d), rng.normal(size=(hidden, d)) / np.sqrt(hidden))
  unit = lambda a: a / np.linalg.norm(a)
  key, value = unit(rng.normal(size=d)), unit(rng.normal(size=d))
  problem = (ws, [np.zeros_like(w) for w in ws], np.tile(key, (t, 1)), np.tile(value, (t, 1)),
             np.tile(key, (t, 1)), np.full(t, 0.1), np.full(t, 0.9), np.full(t, 1e-3))
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  run = lambda clip: jax.jit(lambda w, s, *a: nm.memory_forward(
      w, s, *a, chunk_size=16, max_grad_norm=clip))(
          tuple(map(f32, problem[0])), tuple(map(f32, problem[1])), *map(f32, problem[2:]))
  y, _, _ = run(0.0)
  assert not np.isfinite(np.asarray(y)).all()
  y, w, _ = run(1.0)
  assert np.isfinite(np.asarray(y)).all() and all(np.isfinite(np.asarray(a)).all() for a in w)
  errors = np.sum((np.asarray(y) - value) ** 2, axis=-1)
  # Bounded, and it learned the pair. The clipped heavy-momentum memory still oscillates (single
  # reads of 0.003-3 late in the stream), so one read is a float32 lottery that differs between
  # CPUs (0.03 on one machine, 0.31 on another); the median of the last quarter is not.
  assert np.median(errors[-t // 4:]) < 0.1 < errors[0]


def test_old_forgetting_rate_collapses_a_deep_memory_into_the_zero_saddle_and_defaults_do_not():
  """Why model.titans.alpha_bias moved from -4 to -8: with alpha = sigmoid(-4) = 0.018 per token a
  depth-2 memory fed a periodic stream (50 unit key/value pairs, a repeated sentence) decays to
  W = 0 exactly, and W = 0 is a saddle of ||M(k) - v||^2 (silu(0 W_1) = 0 and W_2 = 0: every
  gradient is zero), so the memory never writes again: MAC, MAG, MAL and LMM trained at chance on
  S-NIAH. At the config's defaults (gates and clip) the weights stay away from zero."""
  from longctx import config as config_lib
  opts = config_lib.base_config().model.titans
  d, hidden, t, period = 32, 32 * opts.memory_expansion, 8192, 50
  rng = np.random.default_rng(0)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  ws = tuple(f32(rng.normal(size=(i, o)) / np.sqrt(i)) for i, o in ((d, hidden), (hidden, d)))
  unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)
  pairs = unit(rng.normal(size=(2, period, d)))
  keys, values = (f32(np.tile(p, (t // period + 1, 1))[:t]) for p in pairs)

  def final_weights(theta_bias, alpha_bias, clip):
    gate = lambda x: jnp.full((t,), x, jnp.float32)
    _, w, _ = jax.jit(lambda *a: nm.memory_forward(*a, chunk_size=16, max_grad_norm=clip))(
        ws, tuple(jnp.zeros_like(w) for w in ws), keys, values, keys,
        gate(opts.max_lr * ref.sigmoid(theta_bias)), gate(ref.sigmoid(opts.eta_bias)),
        gate(ref.sigmoid(alpha_bias)))
    return [np.abs(np.asarray(a)).max() for a in w]

  assert max(final_weights(-2.0, -4.0, 0.0)) == 0.0         # the old defaults: dead
  zero = tuple(jnp.zeros_like(w) for w in ws)
  grads = nm.token_gradients(zero, keys[:4], values[:4])
  assert all(float(jnp.abs(g).max()) == 0.0 for g in grads)  # ... and W = 0 never moves again
  assert min(final_weights(opts.theta_bias, opts.alpha_bias, opts.max_grad_norm)) > 0.1
