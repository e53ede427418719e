"""Dot-product attention, masks and rotary positions as pure functions.

Shapes: B batch, L query block length, S key length, H heads, D head dim.
"""
import jax
import jax.numpy as jnp

# Large negative instead of -inf so a fully masked row gives a uniform (finite)
# softmax instead of NaN; callers never produce such rows for real queries.
_MASK_VALUE = -1e30


def rope_tables(positions: jax.Array, head_dim: int, theta: float = 10000.0):
  """(sin, cos) of the rotary angles, each [B, L, D/2] float32, for positions [B, L].

  Why a conditional: XLA:CPU's loop fusion evaluates a fused producer once per OUTPUT element, so
  sin/cos broadcast over H heads (and over both rotated halves) were recomputed 2H times inside
  every RoPE consumer (forward, recompute and backward), ~15% of a training step at d 256, 4 heads.
  A conditional is a fusion boundary: its result is materialised once. Both branches are the same
  function, so the predicate (cheap, data-dependent, never constant-folded) cannot change the
  result. Other backends get the plain computation (not measured there).
  """
  if head_dim % 2:
    raise ValueError(f"rope needs an even head dimension, got {head_dim}")
  half = head_dim // 2
  inv_freq = 1.0 / (theta ** (jnp.arange(half, dtype=jnp.float32) / half))
  # Float32 so positions of 1M tokens keep their precision.
  angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, L, D/2]
  tables = lambda a: (jnp.sin(a), jnp.cos(a))
  if jax.default_backend() != "cpu":
    return tables(angles)
  return jax.lax.cond(positions.reshape(-1)[0] % 2 == 0, tables, tables, angles)


def apply_rope(x: jax.Array, tables) -> jax.Array:
  """Rotary position embedding (rotate-half form) with precomputed tables (rope_tables).

  x: [B, L, H, D]; tables: (sin, cos) each [B, L, D/2]. Computed in float32; returns x's dtype.
  """
  sin, cos = (t[:, :, None, :] for t in tables)
  half = x.shape[-1] // 2
  x32 = x.astype(jnp.float32)
  x1, x2 = x32[..., :half], x32[..., half:]
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x.dtype)


def rope(x: jax.Array, positions: jax.Array, theta: float = 10000.0) -> jax.Array:
  """Rotary position embedding (rotate-half form).

  x: [B, L, H, D] (D even); positions: [B, L] integer absolute positions.
  Computed in float32 so positions of 1M tokens keep their precision. To rotate q and k at the
  same positions, rope_pair computes the tables once.
  """
  return apply_rope(x, rope_tables(positions, x.shape[-1], theta))


def rope_pair(q: jax.Array, k: jax.Array, positions: jax.Array, theta: float = 10000.0):
  """rope(q, positions), rope(k, positions) with one table (q and k have the same head dim)."""
  tables = rope_tables(positions, q.shape[-1], theta)
  return apply_rope(q, tables), apply_rope(k, tables)


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
