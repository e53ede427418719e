"""kNN retrieval attention over an external (key, value) memory (Memorizing Transformers,
Wu et al. 2022), and the ring buffer that holds the memory.

Shapes: B batch, L queries, H heads, D head dim, M memory slots, K retrieved entries per query.
Each query attends with softmax to its top-K memory entries only (the paper's k = 32); entries
whose slot is not valid (never written, or cleared at a document start) are never retrieved, and
a query with no valid entry reads exactly 0.
"""
import jax
import jax.numpy as jnp

_MASKED = -1e30


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  """x / |x| along the last axis (float32)."""
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)


def knn_attention(q, mem_keys, mem_values, valid, *, top_k: int, scale, approximate: bool = False,
                  recall_target: float = 0.95):
  """Top-K retrieval attention.

  q [B, L, H, D]; mem_keys, mem_values [B, M, H, D]; valid [B, M] bool; scale [H] (logit
  multiplier per head). Scores q.k over all M slots, keeps the K best valid ones per (query, head)
  with lax.top_k (or lax.approx_max_k where the backend has a fast one; on CPU it is exact), and
  returns softmax(scale * scores_K) . values_K as [B, L, H, D] float32. The selection (indices) is
  not differentiable; the scores of the selected entries are, w.r.t. q and the keys.
  """
  top_k = min(top_k, mem_keys.shape[1])
  scores = jnp.einsum("blhd,bmhd->bhlm", q.astype(jnp.float32), mem_keys.astype(jnp.float32))
  scores = jnp.where(valid[:, None, None, :], scores, _MASKED)  # [B, H, L, M]
  if approximate:
    top_scores, idx = jax.lax.approx_max_k(scores, top_k, recall_target=recall_target)
  else:
    top_scores, idx = jax.lax.top_k(scores, top_k)  # [B, H, L, K]
  picked_valid = jnp.take_along_axis(
      jnp.broadcast_to(valid[:, None, None, :], scores.shape), idx, axis=-1)
  logits = jnp.where(picked_valid, top_scores * scale[None, :, None, None], _MASKED)
  probs = jax.nn.softmax(logits, axis=-1)
  probs = jnp.where(jnp.any(picked_valid, axis=-1, keepdims=True), probs, 0.0)
  values = jnp.swapaxes(mem_values.astype(jnp.float32), 1, 2)  # [B, H, M, D]
  # gather per (b, h): values[b, h][idx[b, h]] -> [B, H, L, K, D]
  picked = jax.vmap(jax.vmap(lambda vals, i: vals[i]))(values, idx)
  out = jnp.einsum("bhlk,bhlkd->blhd", probs, picked)
  return out


def ring_buffer_write(buffer, update, write_index):
  """Writes update [B, L, ...] into buffer [B, M, ...] at slots write_index[b] .. + L - 1 per example.

  The caller keeps M a multiple of L and write_index a multiple of L, so a write never wraps.
  """
  def one(buf, upd, i):
    start = (i,) + (0,) * (buf.ndim - 1)
    return jax.lax.dynamic_update_slice(buf, upd.astype(buf.dtype), start)
  return jax.vmap(one)(buffer, update, write_index)
