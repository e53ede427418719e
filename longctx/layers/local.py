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
    return self.init_cache(batch)

  def init_cache(self, batch: int):
    """The ring buffer of the last m blocks' keys/values ({} when m = 0)."""
    if self.mem_blocks == 0:
      return {}
    slots = self.mem_blocks * self.block_len
    shape = (batch, slots, self.num_heads, self.head_dim)
    return {
        "keys": jnp.zeros(shape, jnp.float32),    # [B, m*L, H, D], rotated
        "values": jnp.zeros(shape, jnp.float32),  # [B, m*L, H, D]
        "valid": jnp.zeros((batch, slots), bool),  # False for slots not yet written
    }

  def read_cache(self, memory, reset):
    """The cache entries of `memory` after the per-example reset ({} when m = 0). Subclasses (FAM)
    keep more entries in their memory; only the cache's are read here."""
    if self.mem_blocks == 0:
      return {}
    cache = {name: memory[name] for name in ("keys", "values", "valid")}
    return reset_memory(cache, self.init_cache(reset.shape[0]), reset)

  def write_cache(self, cache, k, v):
    """Ring buffer as a shift: drop the oldest block, append this one (k, v [B, L, H, D])."""
    if self.mem_blocks == 0:
      return {}
    b, l = k.shape[:2]
    new_k = jnp.concatenate([cache["keys"], k.astype(jnp.float32)], axis=1)[:, l:]
    new_v = jnp.concatenate([cache["values"], v.astype(jnp.float32)], axis=1)[:, l:]
    new_valid = jnp.concatenate([cache["valid"], jnp.ones((b, l), bool)], axis=1)[:, l:]
    if self.stop_grad:
      new_k, new_v = jax.lax.stop_gradient(new_k), jax.lax.stop_gradient(new_v)
    return {"keys": new_k, "values": new_v, "valid": new_valid}

  def __call__(self, x, memory, *, positions, reset, prefix=None):
    """prefix: optional [P, d_model] tokens every query sees (Titans' persistent memory); their
    keys are rotated at the block's first position, so their relative distance to a query is the
    query's offset in the block, the same in every block."""
    b, l, _ = x.shape
    q, k, v = self.project(x)
    q = attn_ops.rope(q, positions, self.rope_theta)
    k = attn_ops.rope(k, positions, self.rope_theta)
    causal = jnp.broadcast_to(attn_ops.causal_mask(l)[None, None], (b, 1, l, l))
    keys, values, mask = [], [], []
    if prefix is not None:
      p = prefix.shape[0]
      _, pk, pv = self.project(jnp.broadcast_to(prefix.astype(x.dtype), (b,) + prefix.shape))
      pk = attn_ops.rope(pk, jnp.broadcast_to(positions[:, :1], (b, p)), self.rope_theta)
      keys, values, mask = [pk], [pv], [jnp.ones((b, 1, l, p), bool)]
    cache = self.read_cache(memory, reset)
    if cache:
      keys.append(cache["keys"].astype(k.dtype))
      values.append(cache["values"].astype(v.dtype))
      mask.append(jnp.broadcast_to(cache["valid"][:, None, None, :],
                                   (b, 1, l, cache["valid"].shape[1])))
    # [prefix,] [cache,] block: [B, (P +) (m*L +) L, H, D]
    keys = jnp.concatenate(keys + [k], axis=1)
    values = jnp.concatenate(values + [v], axis=1)
    mask = jnp.concatenate(mask + [causal], axis=-1)
    y = self.merge_heads(attn_ops.dot_product_attention(q, keys, values, mask))
    return y, (self.write_cache(cache, k, v) if cache else memory)


class TransformerXLAttention(BlockSlidingWindowAttention):
  """Transformer-XL: BSWA whose cache is always stop-gradient (truncated BPTT at the block edge)."""

  def __init__(self, d_model, num_heads, *, block_len, mem_blocks, dtype, rope_theta, rngs):
    super().__init__(d_model, num_heads, block_len=block_len, mem_blocks=mem_blocks,
                     stop_grad=True, dtype=dtype, rope_theta=rope_theta, rngs=rngs)
