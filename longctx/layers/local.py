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
    q, k = attn_ops.rope_pair(q, k, positions, self.rope_theta)
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

  def push_cache(self, cache, k, v):
    """Ring buffer as a shift: drop the oldest block, append this one (k rotated, v [B, L, H, D]).

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

  def write_cache(self, cache, k, v):
    """The cache after this block ({} when m = 0), without what it evicted."""
    return self.push_cache(cache, k, v)[0] if cache else {}

  def attend_with_cache(self, q, k, v, cache, prefix=None):
    """Attention of the block's rotated q [B, L, H, D] over [prefix | cache | block (causal)].

    cache: this layer's memory {keys, values, valid} ({} for none); prefix: optional extra slots in
    front of the cache, a dict of the same form (compressive's compressed memory, Titans' persistent
    tokens). Returns [B, L, H, D] before the output projection, so subclasses can mix it with
    another path."""
    b, l = q.shape[:2]
    causal = jnp.broadcast_to(attn_ops.causal_mask(l)[None, None], (b, 1, l, l))
    parts = [p for p in (prefix, cache) if p]
    keys = jnp.concatenate([p["keys"].astype(k.dtype) for p in parts] + [k], axis=1)
    values = jnp.concatenate([p["values"].astype(v.dtype) for p in parts] + [v], axis=1)
    masks = [jnp.broadcast_to(p["valid"][:, None, None, :], (b, 1, l, p["valid"].shape[1]))
             for p in parts]
    return attn_ops.dot_product_attention(q, keys, values, jnp.concatenate(masks + [causal], -1))

  def __call__(self, x, memory, *, positions, reset, prefix=None):
    """prefix: optional [P, d_model] tokens every query sees (Titans' persistent memory); their
    keys are rotated at the block's first position, so their relative distance to a query is the
    query's offset in the block, the same in every block."""
    b = x.shape[0]
    q, k, v = self.project(x)
    q, k = attn_ops.rope_pair(q, k, positions, self.rope_theta)
    slots = None
    if prefix is not None:
      p = prefix.shape[0]
      _, pk, pv = self.project(jnp.broadcast_to(prefix.astype(x.dtype), (b,) + prefix.shape))
      pk = attn_ops.rope(pk, jnp.broadcast_to(positions[:, :1], (b, p)), self.rope_theta)
      slots = {"keys": pk, "values": pv, "valid": jnp.ones((b, p), bool)}
    cache = self.read_cache(memory, reset)
    y = self.merge_heads(self.attend_with_cache(q, k, v, cache, slots))
    return y, (self.write_cache(cache, k, v) if cache else memory)


class TransformerXLAttention(BlockSlidingWindowAttention):
  """Transformer-XL: BSWA whose cache is always stop-gradient (truncated BPTT at the block edge)."""

  def __init__(self, d_model, num_heads, *, block_len, mem_blocks, dtype, rope_theta, rngs):
    super().__init__(d_model, num_heads, block_len=block_len, mem_blocks=mem_blocks,
                     stop_grad=True, dtype=dtype, rope_theta=rope_theta, rngs=rngs)
