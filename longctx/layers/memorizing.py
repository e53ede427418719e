"""Memorizing Transformer attention (Wu et al. 2022; papers.md section 5): Transformer-XL local
attention plus a kNN memory of past (key, value) pairs per head, mixed by a learned per-head gate.

Per block, with the layer's own Q, K, V:
  A_local = XL attention: rotated q over [XL cache | block (causal)]        (layers/local.py)
  A_mem   = softmax over the top-k of  s_h * q^.k^  of the kNN memory, . v   (ops/knn.py)
            q^, k^ = l2-normalised, un-rotated q, k (no position bias on memories); s_h = exp(a_h)
  A = g_h A_mem + (1 - g_h) A_local,  g_h = sigmoid(b_h)                     one b_h per head
  then the block's (k^, v) are appended to the memory, stop-gradient (a non-differentiable FIFO).
Memory: a ring buffer of `capacity` slots per example and head ({keys, values, valid, index}),
cleared per example at a document start (reset), oldest entries overwritten first.

Decisions where the paper or its code leave room (also in the report):
  - the block's pairs enter the kNN memory after the block, so the memory holds every earlier
    block (overlapping the XL cache, as meliad does); a block never retrieves its own keys;
  - only the memory path uses normalised q/k with a learned per-head scale (init `scale_init`);
    the local path is the unchanged XL attention (RoPE, 1/sqrt(D));
  - capacity is a multiple of the block length, so a block's write never wraps around the buffer.
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx

from longctx.ops import attention as attn_ops
from longctx.ops import knn
from longctx.layers.base import reset_memory
from longctx.layers.local import TransformerXLAttention


class MemorizingAttention(TransformerXLAttention):

  def __init__(self, d_model, num_heads, *, block_len, mem_blocks, capacity: int, top_k: int,
               gate_init: float, scale_init: float, approximate: bool, recall_target: float,
               dtype, rope_theta, rngs):
    super().__init__(d_model, num_heads, block_len=block_len, mem_blocks=mem_blocks, dtype=dtype,
                     rope_theta=rope_theta, rngs=rngs)
    if capacity % block_len:
      raise ValueError(f"model.memorizing.capacity={capacity} must be a multiple of "
                       f"model.block_len={block_len}")
    self.capacity = capacity
    self.top_k = top_k
    self.approximate = approximate
    self.recall_target = recall_target
    self.gate = nnx.Param(jnp.full((num_heads,), gate_init, jnp.float32))             # b, [H]
    self.log_scale = nnx.Param(jnp.full((num_heads,), math.log(scale_init), jnp.float32))  # a, [H]

  def init_memory(self, batch: int):
    shape = (batch, self.capacity, self.num_heads, self.head_dim)
    return {
        "xl": super().init_memory(batch),
        "knn": {"keys": jnp.zeros(shape, jnp.float32),     # [B, M, H, D], l2-normalised
                "values": jnp.zeros(shape, jnp.float32),   # [B, M, H, D]
                "valid": jnp.zeros((batch, self.capacity), bool),
                "index": jnp.zeros((batch,), jnp.int32)},  # next slot to write (a multiple of L)
    }

  def __call__(self, x, memory, *, positions, reset):
    b, l, _ = x.shape
    memory = reset_memory(memory, self.init_memory(b), reset)
    q, k, v = self.project(x)

    # Memory path: normalised, un-rotated q/k; retrieval from earlier blocks only.
    q_hat, k_hat = knn.l2_normalize(q), knn.l2_normalize(k)
    mem = memory["knn"]
    a_mem = knn.knn_attention(q_hat, mem["keys"], mem["values"], mem["valid"], top_k=self.top_k,
                              scale=jnp.exp(self.log_scale[...]), approximate=self.approximate,
                              recall_target=self.recall_target)

    # Local path: Transformer-XL over the cache and the block.
    q_rot, k_rot = attn_ops.rope_pair(q, k, positions, self.rope_theta)
    a_local = self.attend_with_cache(q_rot, k_rot, v, memory["xl"])
    new_xl, _ = self.push_cache(memory["xl"], k_rot, v)

    g = jax.nn.sigmoid(self.gate[...])[None, None, :, None]  # [1, 1, H, 1]
    a = g * a_mem + (1.0 - g) * a_local.astype(jnp.float32)

    # FIFO insertion, stop-gradient: the memory is not differentiable (as the paper).
    index = mem["index"]
    new_knn = {
        "keys": knn.ring_buffer_write(mem["keys"], jax.lax.stop_gradient(k_hat), index),
        "values": knn.ring_buffer_write(mem["values"],
                                        jax.lax.stop_gradient(v.astype(jnp.float32)), index),
        "valid": knn.ring_buffer_write(mem["valid"], jnp.ones((b, l), bool), index),
        "index": (index + l) % self.capacity,
    }
    return self.merge_heads(a), {"xl": new_xl, "knn": new_knn}
