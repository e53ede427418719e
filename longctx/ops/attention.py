"""Dot-product attention, masks and rotary positions as pure functions.

Shapes: B batch, L query block length, S key length, H heads, D head dim.
"""
import jax
import jax.numpy as jnp

# Large negative instead of -inf so a fully masked row gives a uniform (finite)
# softmax instead of NaN; callers never produce such rows for real queries.
_MASK_VALUE = -1e30


def rope(x: jax.Array, positions: jax.Array, theta: float = 10000.0) -> jax.Array:
  """Rotary position embedding (rotate-half form).

  x: [B, L, H, D] (D even); positions: [B, L] integer absolute positions.
  Computed in float32 so positions of 1M tokens keep their precision.
  """
  d = x.shape[-1]
  if d % 2:
    raise ValueError(f"rope needs an even head dimension, got {d}")
  half = d // 2
  inv_freq = 1.0 / (theta ** (jnp.arange(half, dtype=jnp.float32) / half))
  angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, L, D/2]
  sin = jnp.sin(angles)[:, :, None, :]
  cos = jnp.cos(angles)[:, :, None, :]
  x32 = x.astype(jnp.float32)
  x1, x2 = x32[..., :half], x32[..., half:]
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x.dtype)


def causal_mask(length: int) -> jax.Array:
  """[L, L] boolean, True where query i may see key j (j <= i)."""
  return jnp.tril(jnp.ones((length, length), dtype=bool))


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array,
                          mask: jax.Array) -> jax.Array:
  """softmax(q k^T / sqrt(D)) v with a boolean mask.

  q: [B, L, H, D]; k, v: [B, S, H, D]; mask broadcastable to [B, H, L, S].
  The scale is 1/sqrt(D) (head dim), also where a paper writes sqrt(d_model).
  Logits and softmax in float32; the output has q's dtype.
  """
  scale = q.shape[-1] ** -0.5
  logits = jnp.einsum("blhd,bshd->bhls", q, k,
                      preferred_element_type=jnp.float32) * scale
  logits = jnp.where(mask, logits, _MASK_VALUE)
  probs = jax.nn.softmax(logits, axis=-1)
  return jnp.einsum("bhls,bshd->blhd", probs.astype(v.dtype), v)
