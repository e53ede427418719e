"""Titans' neural long-term memory (Behrouz, Zhong, Mirrokni, arXiv 2501.00663, Sec. 3), pure jnp.

For ONE example and ONE head (the layer vmaps over both):
  memory     M(x; W) = an MLP of depth L_M: x W_1 -> silu -> ... -> W_{L_M} (L_M = 1: x W, a matrix)
  loss       l(W; k_t, v_t) = || M(k_t; W) - v_t ||^2                                 (eq. 12)
  surprise   S_t = eta_t S_{t-1} - theta_t grad l(W_{t'}; k_t, v_t)                    (eq. 14)
  forget     W_t = (1 - alpha_t) W_{t-1} + S_t                                          (eq. 13)
  read       y_t = M(q_t; W_t)   (no update: eq. 15)
Chunked-parallel training (Sec. 3.2): the tokens are split into chunks of b; inside a chunk every
gradient is taken at the chunk-start weights W_{t'} (t' = t - t mod b), computed at once with
vmap(grad); then the two first-order linear recurrences above run as jax.lax.associative_scan
over the chunk, giving the per-token S_t and W_t; chunks follow each other with lax.scan (the
next chunk's gradients need this chunk's final weights). b = 1 is exact token-by-token online GD.

Numerics: the recurrences h_t = a_t h_{t-1} + x_t are scanned with the combine
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
import functools

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


def chunk_update(weights, momentum, keys, values, theta, eta, alpha):
  """One chunk of b tokens from (W_{t'}, S_{t'}). keys, values [b, D]; theta, eta, alpha [b].
  Returns the per-token weights W_t and momenta S_t (tuples of [b, D_in, D_out])."""
  grads = token_gradients(weights, keys, values)
  surprise = jax.tree.map(lambda g: -_bcast(theta, g) * g, grads)
  momenta = linear_recurrence(eta, surprise, momentum)              # eq. 14
  new_weights = linear_recurrence(1.0 - alpha, momenta, weights)    # eq. 13
  return new_weights, momenta


def memory_forward(weights, momentum, keys, values, queries, theta, eta, alpha, *,
                   chunk_size: int, remat: bool = True):
  """Writes T tokens chunk by chunk and reads each token's query after its own write.

  weights, momentum: tuples of [D_in, D_out]; keys, values, queries [T, D]; theta, eta, alpha [T].
  Returns (reads [T, D], final weights, final momentum). T must be a multiple of chunk_size.
  remat: recompute each chunk's per-token weights in the backward pass instead of storing them.
  """
  t = keys.shape[0]
  if t % chunk_size:
    raise ValueError(f"{t} tokens do not split into chunks of model.titans.chunk_size={chunk_size}")
  n = t // chunk_size
  split = lambda a: a.reshape((n, chunk_size) + a.shape[1:])
  xs = tuple(split(a) for a in (keys, values, queries, theta, eta, alpha))

  def body(carry, chunk):
    w, s = carry
    k, v, q, th, et, al = chunk
    w_tokens, s_tokens = chunk_update(w, s, k, v, th, et, al)
    reads = jax.vmap(memory_apply)(w_tokens, q)                   # y_t = M(q_t; W_t)
    last = lambda tree: jax.tree.map(lambda a: a[-1], tree)
    return (last(w_tokens), last(s_tokens)), reads

  if remat:
    body = jax.checkpoint(body)
  (weights, momentum), reads = jax.lax.scan(body, (weights, momentum), xs)
  return reads.reshape(t, -1), weights, momentum


def batched_memory_forward(weights, momentum, keys, values, queries, theta, eta, alpha, *,
                           chunk_size: int, remat: bool = True):
  """memory_forward for every example and head, each with its own memory.

  weights, momentum: tuples of [B, H, D_in, D_out]; keys, values, queries [B, H, T, D];
  theta, eta, alpha [B, H, T]. Returns (reads [B, H, T, D], weights, momentum).
  """
  fn = functools.partial(memory_forward, chunk_size=chunk_size, remat=remat)
  return jax.vmap(jax.vmap(fn))(weights, momentum, keys, values, queries, theta, eta, alpha)


def batched_memory_read(weights, queries):
  """M(q; W) without any update: weights tuple of [B, H, D_in, D_out]; queries [B, H, T, D]."""
  return jax.vmap(jax.vmap(memory_apply))(weights, queries)
