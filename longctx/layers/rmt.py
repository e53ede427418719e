"""Recurrent Memory Transformer (Bulatov et al. 2022; papers.md section 5): m memory tokens read at
the start and written at the end of each block, carried to the next block.

RMT's memory lives at the embedding level and passes through every layer, so it is not an
attention layer: the decoder asks this module to extend each block of embeddings,
  [read memory (m) | block tokens (L) | write memory (m)]     (the same m vectors at both ends)
runs its layers (plain causal attention over the extended block, no cache: `model.attention=rmt`
builds `full` layers) and hands the final-normed states back; the states at the write slots become
the next block's memory, those at the token slots go to the LM head.
  - block 0 (and any example reset at a document start) reads the learned initial memory [m, d];
  - gradients flow through the carried memory across blocks (BPTT); `model.bptt_blocks = k`
    stops them at every k-th block boundary (the paper's unroll depth);
  - positions: read slots take the m positions before the block, write slots the m after it;
    attention is inside the extended block only, so RoPE sees consistent distances.
Decision: the new memory is taken after the decoder's final RMSNorm (as the last hidden state of
the paper's GPT-2 base), which keeps its scale fixed over any number of blocks.
"""
import jax.numpy as jnp
from flax import nnx

from longctx.layers.base import reset_memory


class RecurrentMemoryTokens(nnx.Module):

  def __init__(self, d_model: int, num_tokens: int, *, rngs: nnx.Rngs):
    self.num_tokens = num_tokens
    init = nnx.initializers.normal(stddev=1.0)
    self.initial = nnx.Param(init(rngs.params(), (num_tokens, d_model), jnp.float32))  # [m, d]

  def init_memory(self, batch: int):
    m, d = self.initial[...].shape
    return {"tokens": jnp.broadcast_to(self.initial[...], (batch, m, d)).astype(jnp.float32)}

  def extend(self, x, memory, positions, reset):
    """x [B, L, d], positions [B, L] -> (x [B, m + L + m, d], positions [B, m + L + m], memory after
    reset)."""
    b, l, _ = x.shape
    m = self.num_tokens
    memory = reset_memory(memory, self.init_memory(b), reset)
    tokens = memory["tokens"].astype(x.dtype)
    offsets = jnp.arange(m, dtype=positions.dtype)
    read_pos = positions[:, :1] - m + offsets
    write_pos = positions[:, -1:] + 1 + offsets
    return (jnp.concatenate([tokens, x, tokens], axis=1),
            jnp.concatenate([read_pos, positions, write_pos], axis=1), memory)

  def split(self, h):
    """Final-normed states h [B, m + L + m, d] -> (token states [B, L, d], new memory)."""
    m = self.num_tokens
    return h[:, m:-m], {"tokens": h[:, -m:].astype(jnp.float32)}
