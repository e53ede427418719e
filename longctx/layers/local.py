"""Local-attention baselines: full causal attention, block sliding-window attention, Transformer-XL.

- `full`: causal attention over everything the layer is given. The decoder hands it the whole
  sequence as one block (DecoderConfig: full attention has no block recurrence), so it is the
  quadratic baseline.
- `bswa` (TransformerFAM eq. 1a-1c): each block attends causally to itself and fully to the cached
  keys/values of the previous `mem_blocks` blocks. Gradients flow into the cache (BPTT across blocks)
  unless `stop_grad` is set (the paper's M1_SG).
- `xl` (Transformer-XL): the previous `mem_blocks` blocks (default 1) cached with stop-gradient.
  Decision: we cache keys/values (as the issue asks) and use RoPE on absolute positions instead of
  Transformer-XL's sinusoidal relative-position terms; RoPE makes q.k depend on the position
  difference only, which is the property the relative encoding was introduced for. Every query sees
  the whole cache (mem_len = mem_blocks * L), which is the original definition; FAM's "TXL window"
  variant with an extra mask beyond the window is not built.
The cache keys are stored rotated at their own absolute positions, so rotation continues across blocks.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from longctx.ops import attention as attn_ops
from longctx.layers.base import QKVAttention, reset_memory


class FullAttention(QKVAttention):
  """Causal attention over the given tokens; no memory."""

  def init_memory(self, batch: int):
    del batch
    return {}

  def __call__(self, x, memory, *, positions, reset):
    del reset
    q, k, v = self.project(x)
    q = attn_ops.rope(q, positions, self.rope_theta)
    k = attn_ops.rope(k, positions, self.rope_theta)
    mask = attn_ops.causal_mask(x.shape[1])[None, None]
    return self.merge_heads(attn_ops.dot_product_attention(q, k, v, mask)), memory


class BlockSlidingWindowAttention(QKVAttention):
  """BSWA: current block (causal) + the keys/values of `mem_blocks` previous blocks."""

  def __init__(self, d_model, num_heads, *, block_len: int, mem_blocks: int, stop_grad: bool,
               dtype, rope_theta, rngs):
    super().__init__(d_model, num_heads, dtype=dtype, rope_theta=rope_theta, rngs=rngs)
    self.block_len = block_len
    self.mem_blocks = mem_blocks
    self.stop_grad = stop_grad

  def init_memory(self, batch: int):
    if self.mem_blocks == 0:
      return {}
    slots = self.mem_blocks * self.block_len
    shape = (batch, slots, self.num_heads, self.head_dim)
    return {
        "keys": jnp.zeros(shape, jnp.float32),    # [B, m*L, H, D], rotated
        "values": jnp.zeros(shape, jnp.float32),  # [B, m*L, H, D]
        "valid": jnp.zeros((batch, slots), bool),  # False for slots not yet written
    }

  def __call__(self, x, memory, *, positions, reset):
    q, k, v = self.project(x)
    q = attn_ops.rope(q, positions, self.rope_theta)
    k = attn_ops.rope(k, positions, self.rope_theta)
    if self.mem_blocks == 0:
      causal = attn_ops.causal_mask(x.shape[1])[None, None]  # [1, 1, L, L]
      return self.merge_heads(attn_ops.dot_product_attention(q, k, v, causal)), memory
    memory = reset_memory(memory, self.init_memory(x.shape[0]), reset)
    y = self.merge_heads(self.attend_with_cache(q, k, v, memory))
    new_memory, _ = self.push_cache(memory, k, v)
    return y, new_memory

  def attend_with_cache(self, q, k, v, cache, prefix=None):
    """Attention of the block's rotated q [B, L, H, D] over [prefix | cache | block (causal)].

    cache: this layer's memory {keys, values, valid}; prefix: optional extra slots in front of the
    cache, a dict of the same form (the compressed memory of `compressive`). Returns [B, L, H, D]
    before the output projection, so subclasses can mix it with another path."""
    b, l = q.shape[:2]
    causal = attn_ops.causal_mask(l)[None, None]  # [1, 1, L, L]
    parts = [prefix, cache] if prefix is not None else [cache]
    keys = jnp.concatenate([p["keys"].astype(k.dtype) for p in parts] + [k], axis=1)
    values = jnp.concatenate([p["values"].astype(v.dtype) for p in parts] + [v], axis=1)
    slots = sum(p["valid"].shape[1] for p in parts)
    cache_mask = jnp.concatenate([p["valid"] for p in parts], axis=1)[:, None, None, :]
    mask = jnp.concatenate([jnp.broadcast_to(cache_mask, (b, 1, l, slots)),
                            jnp.broadcast_to(causal, (b, 1, l, l))], axis=-1)
    return attn_ops.dot_product_attention(q, keys, values, mask)

  def push_cache(self, cache, k, v):
    """Ring buffer as a shift: drop the oldest block, append this one (k rotated).

    Returns (new cache, evicted) where evicted {keys, values, valid} holds the L oldest slots that
    left the cache (what `compressive` compresses)."""
    b, l = k.shape[:2]
    new_k = jnp.concatenate([cache["keys"], k.astype(jnp.float32)], axis=1)
    new_v = jnp.concatenate([cache["values"], v.astype(jnp.float32)], axis=1)
    new_valid = jnp.concatenate([cache["valid"], jnp.ones((b, l), bool)], axis=1)
    evicted = {"keys": new_k[:, :l], "values": new_v[:, :l], "valid": new_valid[:, :l]}
    new_k, new_v, new_valid = new_k[:, l:], new_v[:, l:], new_valid[:, l:]
    if self.stop_grad:
      new_k, new_v = jax.lax.stop_gradient(new_k), jax.lax.stop_gradient(new_v)
    return {"keys": new_k, "values": new_v, "valid": new_valid}, evicted


class TransformerXLAttention(BlockSlidingWindowAttention):
  """Transformer-XL: BSWA whose cache is always stop-gradient (truncated BPTT at the block edge)."""

  def __init__(self, d_model, num_heads, *, block_len, mem_blocks, dtype, rope_theta, rngs):
    super().__init__(d_model, num_heads, block_len=block_len, mem_blocks=mem_blocks,
                     stop_grad=True, dtype=dtype, rope_theta=rope_theta, rngs=rngs)
