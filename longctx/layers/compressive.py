"""Compressive Transformer attention (Rae et al. 2019; papers.md section 5): the Transformer-XL cache
plus a compressed memory fed by what leaves the cache, and the attention-reconstruction loss.

Per block (L tokens), with the layer's own rotated Q, K, V:
  y = attention of q over [compressed memory (n_cm slots) | XL cache (m L slots) | block (causal)]
  the block enters the XL cache; the oldest L slots leave it ("old") and are compressed
  f_c(old) = 1D convolution over the slot axis with kernel = stride = rate c  ->  L / c slots
  that enter the compressed FIFO (its oldest L / c slots are dropped).
  recon = mean || Attn(q, old) - Attn(q, f_c(old)) ||^2, with q, old and the attention weights
          stop-gradiented, so it trains only the compressor; the LM loss never reaches it (the
          compressed memory is stored stop-gradient, like the XL cache). The layer returns
          `recon_weight * recon` per example as its auxiliary loss (layers/base.py).

Decisions (also in the report):
  - we compress the cached keys and values (this framework's XL cache holds rotated K/V, not the
    layer's input states), with one convolution for keys and one for values, each mixing all heads
    ([c, H D, H D]); the paper compresses hidden states, which the layer then projects;
  - the compressor starts as mean pooling (each tap = identity / c), so at rate 1 it is the
    identity and the layer starts as Transformer-XL over the longer cache;
  - the reconstruction queries are the current block's (the paper's h) and attend to all of
    `old` without a causal mask; a block whose `old` was never written adds no loss.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from longctx.ops import attention as attn_ops
from longctx.layers.base import reset_memory
from longctx.layers.local import TransformerXLAttention


def compress(slots, kernel):
  """1D conv with kernel = stride = c over the slot axis. slots [B, S, H, D]; kernel [c, HD, HD]
  -> [B, S / c, H, D]."""
  b, s, h, d = slots.shape
  c = kernel.shape[0]
  windows = slots.astype(jnp.float32).reshape(b, s // c, c, h * d)
  return jnp.einsum("bwci,cio->bwo", windows, kernel).reshape(b, s // c, h, d)


class CompressiveAttention(TransformerXLAttention):

  def __init__(self, d_model, num_heads, *, block_len, mem_blocks, compressed_len: int, rate: int,
               recon_weight: float, dtype, rope_theta, rngs):
    super().__init__(d_model, num_heads, block_len=block_len, mem_blocks=mem_blocks, dtype=dtype,
                     rope_theta=rope_theta, rngs=rngs)
    if block_len % rate or compressed_len % (block_len // rate):
      raise ValueError(f"model.compressive: rate={rate} must divide model.block_len={block_len} "
                       f"and compressed_len={compressed_len} must be a multiple of block_len/rate")
    self.rate = rate
    self.compressed_len = compressed_len
    self.recon_weight = recon_weight
    # Two distinct buffers (one shared array would be donated twice by the train step).
    pooling = lambda: jnp.tile(jnp.eye(d_model, dtype=jnp.float32)[None] / rate, (rate, 1, 1))
    self.compress_keys = nnx.Param(pooling())    # [c, HD, HD]
    self.compress_values = nnx.Param(pooling())  # [c, HD, HD]

  def init_memory(self, batch: int):
    shape = (batch, self.compressed_len, self.num_heads, self.head_dim)
    return {"xl": super().init_memory(batch),
            "compressed": {"keys": jnp.zeros(shape, jnp.float32),    # [B, n_cm, H, D], rotated
                           "values": jnp.zeros(shape, jnp.float32),  # [B, n_cm, H, D]
                           "valid": jnp.zeros((batch, self.compressed_len), bool)}}

  def __call__(self, x, memory, *, positions, reset):
    b, l, _ = x.shape
    memory = reset_memory(memory, self.init_memory(b), reset)
    q, k, v = self.project(x)
    q, k = attn_ops.rope_pair(q, k, positions, self.rope_theta)
    y = self.merge_heads(self.attend_with_cache(q, k, v, memory["xl"], memory["compressed"]))
    new_xl, old = self.push_cache(memory["xl"], k, v)

    # Compress what left the cache; the compressed FIFO drops its oldest L / c slots.
    old = jax.lax.stop_gradient(old)
    comp_k = compress(old["keys"], self.compress_keys[...])
    comp_v = compress(old["values"], self.compress_values[...])
    comp_valid = jnp.all(old["valid"].reshape(b, l // self.rate, self.rate), axis=-1)
    cm = memory["compressed"]
    new_cm = {"keys": jnp.concatenate([cm["keys"], jax.lax.stop_gradient(comp_k)], 1)[:, l // self.rate:],
              "values": jnp.concatenate([cm["values"], jax.lax.stop_gradient(comp_v)], 1)[:, l // self.rate:],
              "valid": jnp.concatenate([cm["valid"], comp_valid], 1)[:, l // self.rate:]}

    recon = self.reconstruction_loss(jax.lax.stop_gradient(q), old, comp_k, comp_v, comp_valid)
    return y, {"xl": new_xl, "compressed": new_cm}, self.recon_weight * recon

  @staticmethod
  def reconstruction_loss(q, old, comp_k, comp_v, comp_valid):
    """Per example: mean over (L, H, D) of (Attn(q, old) - Attn(q, f_c(old)))^2, 0 where `old` was
    never written. Returns [B] float32."""
    b, l = q.shape[:2]
    q = q.astype(jnp.float32)
    full = jnp.ones((b, 1, l, old["keys"].shape[1]), bool)
    target = attn_ops.dot_product_attention(q, old["keys"], old["values"], full)
    full_c = jnp.ones((b, 1, l, comp_k.shape[1]), bool)
    approx = attn_ops.dot_product_attention(q, comp_k, comp_v, full_c)
    err = jnp.mean(jnp.square(target - approx), axis=(1, 2, 3))
    return jnp.where(jnp.all(comp_valid, axis=-1), err, 0.0)
