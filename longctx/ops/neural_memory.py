"""Titans' neural long-term memory (Behrouz, Zhong, Mirrokni, arXiv 2501.00663, Sec. 3), pure jnp.

For ONE example and ONE head (the layer vmaps over both):
  memory     M(x; W) = an MLP of depth L_M: x W_1 -> silu -> ... -> W_{L_M} (L_M = 1: x W, a matrix)
  loss       l(W; k_t, v_t) = || M(k_t; W) - v_t ||^2                                 (eq. 12)
  surprise   S_t = eta_t S_{t-1} - theta_t grad l(W_{t'}; k_t, v_t)                    (eq. 14)
  forget     W_t = (1 - alpha_t) W_{t-1} + S_t                                          (eq. 13)
             or, with an anchor Wbar (not in the paper; model.titans.forget_to='initial'):
             W_t = (1 - alpha_t) W_{t-1} + alpha_t Wbar + S_t, forgetting towards Wbar
  read       y_t = M(q_t; W_t)   (no update: eq. 15)
Chunked-parallel training (Sec. 3.2): the tokens are split into chunks of b; inside a chunk every
gradient is taken at the chunk-start weights W_{t'} (t' = t - t mod b); chunks follow each other
with lax.scan (the next chunk's gradients need this chunk's final weights). b = 1 is exact
token-by-token online GD. Two forms of one chunk:
  - chunk_read_update (used by memory_forward): the matmul ("dual") form. The recurrences are
    unrolled into [b, b] gate coefficients (chunk_coefficients) and each token's gradient is a
    rank-one product, so the reads need no per-token weights; only W_b, S_b are formed;
  - chunk_update (the reference in tests): vmap(grad) per token, then the two recurrences as
    jax.lax.associative_scan, materialising every W_t and S_t.

Numerics (chunk_update): the recurrences h_t = a_t h_{t-1} + x_t are scanned with the combine
(a1, x1), (a2, x2) -> (a1 a2, a2 x1 + x2), directly on the gates: no cumulative product beta_t
is ever divided by (eq. 16's beta_t / beta_i underflows in float32 over long chunks).

Decisions (the paper is silent, papers.md 2(e)):
- the MLP's activation is SiLU (the paper's activation on q/k/v; LUCID uses GELU), no residual or
  LayerNorm around it (LUCID's TTT-style extras are not in the paper), hidden width = expansion * D;
- y_t reads the weights AFTER token t's write (W_t), the definition of a recurrent layer's output
  (TTT, DeltaNet); with chunks, W_t holds all tokens <= t of the chunk (gradients at W_{t'}), so
  the read is causal;
- gradients flow through everything (keys, values, gates, W_0): the outer loop learns to write.
Shapes: T tokens, D head dim; weights are a tuple of L_M arrays [D_in, D_out].
"""
import jax
import jax.numpy as jnp


def memory_apply(weights, x: jax.Array) -> jax.Array:
  """M(x; W): x [..., D] through the MLP whose layer matrices are `weights` (tuple)."""
  h = x
  for i, w in enumerate(weights):
    h = h @ w
    if i < len(weights) - 1:
      h = jax.nn.silu(h)
  return h


def associative_loss(weights, key: jax.Array, value: jax.Array) -> jax.Array:
  """l(W; k, v) = ||M(k; W) - v||^2 for one token: key, value [D]."""
  return jnp.sum(jnp.square(memory_apply(weights, key) - value))


def token_gradients(weights, keys: jax.Array, values: jax.Array):
  """grad_W l(W; k_t, v_t) for every token at the SAME weights W: keys, values [b, D] -> tuple of
  [b, D_in, D_out] (the mini-batch surprise of Sec. 3.2)."""
  return jax.vmap(jax.grad(associative_loss), in_axes=(None, 0, 0))(weights, keys, values)


def linear_recurrence(decay: jax.Array, inputs, initial):
  """h_t = decay_t h_{t-1} + inputs_t for t = 1..T with h_0 = initial; returns every h_t.

  decay [T]; inputs: a pytree of [T, ...] leaves; initial: the matching pytree of [...] leaves.
  Parallel (associative scan, log T depth) and division-free: the combine multiplies gates
  pairwise, so a long run of small gates underflows only to a genuinely negligible h.
  """
  def combine(left, right):
    a1, x1 = left
    a2, x2 = right
    return a1 * a2, jax.tree.map(lambda p, q: _bcast(a2, p) * p + q, x1, x2)

  # Fold h_0 into the first input, so the scan starts from zero state.
  inputs = jax.tree.map(lambda x, h0: x.at[0].add(decay[0] * h0), inputs, initial)
  _, out = jax.lax.associative_scan(combine, (decay, inputs))
  return out


def _bcast(a, like):
  return a.reshape(a.shape + (1,) * (like.ndim - a.ndim))


def clip_scale(sq_norms: jax.Array, max_norm: float) -> jax.Array:
  """min(1, max_norm / ||g_t||) from the squared norms [b], for max_norm > 0. Written as
  max_norm / sqrt(max(||g||^2, max_norm^2)): no division by a zero norm."""
  return max_norm * jax.lax.rsqrt(jnp.maximum(sq_norms, max_norm ** 2))


def chunk_update(weights, momentum, keys, values, theta, eta, alpha, max_grad_norm: float = 0.0,
                 anchor=None):
  """One chunk of b tokens from (W_{t'}, S_{t'}). keys, values [b, D]; theta, eta, alpha [b].
  Returns the per-token weights W_t and momenta S_t (tuples of [b, D_in, D_out]).
  max_grad_norm > 0 clips each token's gradient (all layers together) to that norm.
  anchor: None (eq. 13, forgetting towards 0) or weights Wbar that forgetting pulls towards."""
  grads = token_gradients(weights, keys, values)
  if max_grad_norm > 0:
    scale = clip_scale(sum(jnp.sum(jnp.square(g), axis=(1, 2)) for g in grads), max_grad_norm)
    grads = jax.tree.map(lambda g: _bcast(scale, g) * g, grads)
  surprise = jax.tree.map(lambda g: -_bcast(theta, g) * g, grads)
  momenta = linear_recurrence(eta, surprise, momentum)              # eq. 14
  if anchor is None:
    return linear_recurrence(1.0 - alpha, momenta, weights), momenta  # eq. 13
  # W - Wbar follows eq. 13 itself: (W_t - Wbar) = (1 - alpha_t)(W_{t-1} - Wbar) + S_t.
  offsets = linear_recurrence(1.0 - alpha, momenta, jax.tree.map(jnp.subtract, weights, anchor))
  return jax.tree.map(lambda o, w: o + w[None], offsets, anchor), momenta


def _segment_products(x: jax.Array) -> jax.Array:
  """P[t, s] = prod_{s < j <= t} x_j for s <= t (1 on the diagonal), 0 above it; x [b] -> [b, b].
  A cumulative product down each column of a masked [b, b] matrix: no division, so a zero gate
  (eta = 0, momentum off) is exact and its gradient finite."""
  t = jnp.arange(x.shape[0])
  factors = jnp.where(t[:, None] > t[None, :], x[:, None], jnp.ones((), x.dtype))  # [j, s]
  return jnp.where(t[:, None] >= t[None, :], jnp.cumprod(factors, axis=0), 0.0)


def chunk_coefficients(theta, eta, alpha):
  """The chunk's recurrences (eqs. 13-14) unrolled into coefficients, theta, eta, alpha [b]:
    S_t = p_t S_0 - sum_{s<=t} E[t, s] g_s          E[t, s] = theta_s eta_{s+1} ... eta_t
    W_t = a_t W_0 + c_t S_0 - sum_{s<=t} C[t, s] g_s
  with a_t = prod_{j<=t} (1 - alpha_j), p_t = prod_{j<=t} eta_j, and, from c_t = (1 - alpha_t)
  c_{t-1} + p_t and C[t] = (1 - alpha_t) C[t-1] + E[t] unrolled, c = G p and C = G E where
  G[t, r] = prod_{r < j <= t} (1 - alpha_j). Closed form, no sequential scan (it ran b tiny steps
  per chunk inside the chunk loop) and no division. Returns (a, p, c [b], C, E [b, b])."""
  keep = 1.0 - alpha
  decay = _segment_products(keep)                           # G [b, b]
  big_e = _segment_products(eta) * theta[None, :]
  hi = jax.lax.Precision.HIGHEST   # tiny products; TPU's default bf16 passes would round them
  big_c = jnp.matmul(decay, big_e, precision=hi)
  p = jnp.cumprod(eta)
  c = jnp.matmul(decay, p, precision=hi)
  return jnp.cumprod(keep), p, c, big_c, big_e


def _key_activations(weights, keys, values):
  """Forward of the chunk's keys through M at the chunk-start weights, and the per-token gradient
  factors: layer l's input u_l [b, D_in] and the loss gradient at its output delta_l [b, D_out], so
  grad_{W_l} l(W; k_s, v_s) = u_l[s]^T delta_l[s] (a rank-one matrix per token)."""
  def total_loss(offsets):
    h, inputs = keys, []
    for i, (w, e) in enumerate(zip(weights, offsets)):
      inputs.append(h)
      h = h @ w + e
      if i < len(weights) - 1:
        h = jax.nn.silu(h)
    return jnp.sum(jnp.square(h - values)), inputs

  offsets = tuple(jnp.zeros((keys.shape[0], w.shape[1]), keys.dtype) for w in weights)
  deltas, inputs = jax.grad(total_loss, has_aux=True)(offsets)
  return inputs, deltas


def chunk_read_update(weights, momentum, keys, values, queries, theta, eta, alpha,
                      max_grad_norm: float = 0.0, coefficients=None, anchor=None):
  """One chunk in matmul ("dual") form: the reads y_t = M(q_t; W_t) and the chunk-end (W_b, S_b),
  without materialising any per-token W_t (chunk_update does, as a reference).

  Every W_t of the chunk is a_t W_0 + c_t S_0 - sum_s C[t, s] u_s^T delta_s (chunk_coefficients), so
  a layer applied to r_t [D_in] is a_t r_t W_0 + c_t r_t S_0 - sum_s C[t, s] (r_t . u_s) delta_s:
  a masked attention-like product ([b, b] scores r U^T times the [b, b] coefficients) per layer.
  keys, values, queries [b, D]; theta, eta, alpha [b]. Returns (reads [b, D], W_b, S_b).
  max_grad_norm > 0 clips each token's gradient (all layers together): the norm of the rank-one
  u^T delta is |u| |delta|, so the clip scales delta and no gradient is formed.
  coefficients: chunk_coefficients(theta, eta, alpha) if already computed (memory_forward does
  it for every chunk at once, outside the sequential chunk loop).
  anchor: weights Wbar forgetting pulls towards (None: 0, eq. 13). W - Wbar follows eq. 13, so
  W_t = a_t W_0 + (1 - a_t) Wbar + c_t S_0 - sum_s C[t, s] g_s (W_0, S_0: the chunk-start state,
  as above): one more read term."""
  if coefficients is None:
    coefficients = chunk_coefficients(theta, eta, alpha)
  a, p, c, big_c, big_e = coefficients
  inputs, deltas = _key_activations(weights, keys, values)
  if max_grad_norm > 0:
    sq = sum(jnp.sum(jnp.square(u), -1) * jnp.sum(jnp.square(d), -1)
             for u, d in zip(inputs, deltas))
    scale = clip_scale(sq, max_grad_norm)[:, None]
    deltas = tuple(scale * d for d in deltas)
  anchors = (None,) * len(weights) if anchor is None else anchor
  h = queries
  for i, (w, m, u, d, wbar) in enumerate(zip(weights, momentum, inputs, deltas, anchors)):
    h_in = h
    h = a[:, None] * (h_in @ w) + c[:, None] * (h_in @ m) - ((h_in @ u.T) * big_c) @ d
    if wbar is not None:
      h = h + (1.0 - a)[:, None] * (h_in @ wbar)
    if i < len(weights) - 1:
      h = jax.nn.silu(h)
  new_weights = tuple(a[-1] * w + c[-1] * m - u.T @ (big_c[-1][:, None] * d)
                      + (0.0 if wbar is None else (1.0 - a[-1]) * wbar)
                      for w, m, u, d, wbar in zip(weights, momentum, inputs, deltas, anchors))
  new_momentum = tuple(p[-1] * m - u.T @ (big_e[-1][:, None] * d)
                       for m, u, d in zip(momentum, inputs, deltas))
  return h, new_weights, new_momentum


def memory_forward(weights, momentum, keys, values, queries, theta, eta, alpha, *,
                   chunk_size: int, remat: bool = True, max_grad_norm: float = 0.0, anchor=None,
                   unroll: int = 1):
  """Writes T tokens chunk by chunk and reads each token's query after its own write.

  weights, momentum: tuples of [D_in, D_out]; keys, values, queries [T, D]; theta, eta, alpha [T].
  Returns (reads [T, D], final weights, final momentum). T must be a multiple of chunk_size.
  remat: recompute each chunk in the backward pass instead of storing its intermediates.
  max_grad_norm > 0: clip each token's inner gradient to that norm (chunk_read_update).
  anchor: None (eq. 13) or weights (tuple of [D_in, D_out]) that forgetting pulls towards.
  unroll: chunks per iteration of the chunk loop (lax.scan's unroll; the same arithmetic). On a GPU
  each loop iteration is launched from the host, and MAC's step was launch-bound there
  (experiments/titans/README.md, stop 37).
  Each chunk runs in the matmul form of chunk_read_update (no per-token weight matrices).
  """
  t = keys.shape[0]
  if t % chunk_size:
    raise ValueError(f"{t} tokens do not split into chunks of model.titans.chunk_size={chunk_size}")
  n = t // chunk_size
  split = lambda a: a.reshape((n, chunk_size) + a.shape[1:])
  xs = tuple(split(a) for a in (keys, values, queries, theta, eta, alpha))
  # The gate coefficients depend on the gates only: every chunk's at once, outside the loop.
  coefficients = jax.vmap(chunk_coefficients)(*xs[3:])

  def body(carry, chunk):
    chunk, coeffs = chunk
    reads, w, s = chunk_read_update(*carry, *chunk, max_grad_norm=max_grad_norm,
                                    coefficients=coeffs, anchor=anchor)  # y_t = M(q_t; W_t)
    return (w, s), reads

  if remat:
    body = jax.checkpoint(body)
  (weights, momentum), reads = jax.lax.scan(body, (weights, momentum), (xs, coefficients),
                                            unroll=unroll)
  return reads.reshape(t, -1), weights, momentum


def batched_memory_forward(weights, momentum, keys, values, queries, theta, eta, alpha, *,
                           chunk_size: int, remat: bool = True, max_grad_norm: float = 0.0,
                           anchor=None, unroll: int = 1):
  """memory_forward for every example and head, each with its own memory.

  weights, momentum: tuples of [B, H, D_in, D_out]; keys, values, queries [B, H, T, D];
  theta, eta, alpha [B, H, T]; anchor: None or a tuple of [H, D_in, D_out], one per head shared
  by the batch. Returns (reads [B, H, T, D], weights, momentum).
  """
  def fn(w, s, k, v, q, th, et, al, wbar):
    return memory_forward(w, s, k, v, q, th, et, al, chunk_size=chunk_size, remat=remat,
                          max_grad_norm=max_grad_norm, anchor=wbar, unroll=unroll)
  per_head = jax.vmap(fn)                                     # over H (anchor too)
  per_example = jax.vmap(per_head, in_axes=(0,) * 8 + (None,))   # over B (anchor shared)
  return per_example(weights, momentum, keys, values, queries, theta, eta, alpha, anchor)


def batched_memory_read(weights, queries):
  """M(q; W) without any update: weights tuple of [B, H, D_in, D_out]; queries [B, H, T, D]."""
  return jax.vmap(jax.vmap(memory_apply))(weights, queries)
