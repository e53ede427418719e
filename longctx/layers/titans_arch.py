"""Titans' three ways of combining the neural memory with attention (arXiv 2501.00663, Sec. 4).

- MAC, memory as context (eqs. 21-25), one segment = one decoder block of L tokens:
    h   = M*_{t-1}(q)            retrieve with the SEGMENT's queries from earlier segments' memory
    y   = Attn([p, h, x])        attention over persistent tokens, retrieved tokens and the segment
    M_t = write(M_{t-1}, y)      the memory is updated with the ATTENTION OUTPUT
    o   = y (x) M*_t(y)          read again with the updated memory, then gate
- MAG, memory as gate (eqs. 26-28): o = SWA*(x) (x) M(x), sliding-window attention whose
  persistent prefix is always visible, gated with the memory branch.
- MAL, memory as layer (eqs. 29-31): o = SWA*(M(x)), the memory layer then the attention.

Decisions (papers.md 2(e) items 4-5; exposed in model.titans):
- (x), `model.titans.output_gate` (Sec. 4.2: "normalise y and M(.) with learnable vector
  weights, then a non-linearity"; Sec. 4.4: "output normalisation + linear gating before the
  final output projection"), both followed by an output projection W:
    'sigmoid' (default): W(RMSNorm(y) * sigmoid(RMSNorm(m))), the memory gates the attention
      output (LUCID's gate_attn_output); what the S-NIAH runs of experiments/titans used;
    'mix': g = sigmoid([RMSNorm(y), RMSNorm(m)] W_g + b_g), W(g * RMSNorm(y) + (1 - g) * RMSNorm(m)),
      a convex per-channel mixture that keeps an additive path from the memory to the output
      (under 'sigmoid' the memory reaches it only through sigmoid', <= 1/4);
- MAC causality: h_j is computed from segment token j's query, so token i sees h_j only for
  j <= i (a full mask over h, as in Fig. 3a read literally, would let token i read its future
  tokens' queries; Titans-NNX has this leak, implementations.md 1.2). N_l = L retrieved tokens;
  the memory is written with the outputs at the segment positions only, RMS-normalised
  (`mac_write_norm`, the default: in the pre-norm decoder y is the only memory input no norm
  reaches, and an unnormalised y saturated the gates in training); the read-again at token
  i uses the weights after token i's write (chunked as in ops/neural_memory.py), so it is causal;
  MAC's queries for retrieval and for the read-again share W_Q but not the convolution tail;
- positions: segment keys and h_j are rotated at token j's position; persistent keys at the
  block's first position (their distance to a query is its offset in the block in every block,
  so the model stays shift-invariant and can run past its training length);
- the MAG/MAL window is BSWA (layers/local.py) over the block plus `window_blocks` earlier
  blocks; the memory branch reads x only: prepending p once at the start of the sequence would
  just write p into the memory, which the learned initial memory W_0 already covers;
- MAL keeps a residual around each of its two sub-layers: out = m + SWA*(RMSNorm(x + m)),
  m = LMM(x) ("residual connections in all blocks", Sec. 4.4).
"""
import jax
import jax.numpy as jnp
from flax import nnx

from longctx.ops import attention as attn_ops
from longctx.layers.base import QKVAttention, reset_memory
from longctx.layers.local import BlockSlidingWindowAttention
from longctx.layers.titans import NeuralMemory


class OutputGate(nnx.Module):
  """The data-dependent (x) of eqs. 25 and 28 (`mode`: 'sigmoid' | 'mix', module docstring)."""

  def __init__(self, d_model, mode, *, dtype, rngs):
    self.mode = mode
    self.norm_y = nnx.RMSNorm(d_model, dtype=dtype, rngs=rngs)
    self.norm_m = nnx.RMSNorm(d_model, dtype=dtype, rngs=rngs)
    if mode == "mix":
      self.mix = nnx.Linear(2 * d_model, d_model, use_bias=True, dtype=dtype, rngs=rngs)
    self.out = nnx.Linear(d_model, d_model, use_bias=False, dtype=dtype, rngs=rngs)

  def _gate(self, ny, nm):
    if self.mode == "mix":
      return jax.nn.sigmoid(self.mix(jnp.concatenate([ny, nm], -1)))
    return jax.nn.sigmoid(nm)

  def gate_values(self, y, m):
    """sigmoid: the factor on RMSNorm(y); mix: g, the weight of RMSNorm(y) against RMSNorm(m)."""
    return self._gate(self.norm_y(y), self.norm_m(m))

  def __call__(self, y, m):
    ny, nm = self.norm_y(y), self.norm_m(m)   # once: the block step runs this every layer
    g = self._gate(ny, nm)
    if self.mode == "mix":
      return self.out(g * ny + (1.0 - g) * nm)
    return self.out(ny * g)


def _persistent_param(num_tokens, d_model, rngs):
  if not num_tokens:
    return None
  # Unit scale like the (RMS-normalised) tokens they sit beside in the attention.
  return nnx.Param(jax.random.normal(rngs.params(), (num_tokens, d_model), jnp.float32))


class MemoryAsContext(QKVAttention):
  """MAC. Memory: the neural memory state; no attention cache (attention stays in the segment)."""

  STREAMS = ("q_seg", "q_out", "k", "v")

  def __init__(self, d_model, num_heads, opts, *, block_len, rope_theta, dtype, rngs):
    super().__init__(d_model, num_heads, dtype=dtype, rope_theta=rope_theta, rngs=rngs)
    del block_len  # the segment is whatever block the decoder hands over
    self.memory = NeuralMemory(d_model, num_heads, opts, dtype=dtype, rngs=rngs)
    self.persistent = _persistent_param(opts.persistent_tokens, d_model, rngs)
    self.gate = OutputGate(d_model, opts.output_gate, dtype=dtype, rngs=rngs)
    self.write_norm = (nnx.RMSNorm(d_model, dtype=dtype, rngs=rngs) if opts.mac_write_norm
                       else None)

  def init_memory(self, batch: int):
    return self.memory.init_state(batch, self.STREAMS)

  def retrieve(self, x, memory):
    """Eq. 21: h = M*_{t-1}(x W_Q), read out to d_model tokens [B, L, d]."""
    q, memory = self.memory.queries(x, memory, "q_seg")
    return self.memory.readout(self.memory.read(q, memory), x), memory

  def attend(self, x, retrieved, positions):
    """Eqs. 22-23: the segment's queries over [persistent, retrieved, segment]; see the mask
    decision in the module docstring. Returns y [B, L, d] at the segment positions."""
    b, l, _ = x.shape
    q, k, v = self.project(x)
    _, hk, hv = self.project(retrieved)
    tables = attn_ops.rope_tables(positions, q.shape[-1], self.rope_theta)
    q, k, hk = (attn_ops.apply_rope(t, tables) for t in (q, k, hk))
    causal = jnp.broadcast_to(attn_ops.causal_mask(l)[None, None], (b, 1, l, l))
    keys, values, mask = [hk, k], [hv, v], [causal, causal]
    if self.persistent is not None:
      p = self.persistent.shape[0]
      prefix = jnp.broadcast_to(self.persistent[...].astype(x.dtype), (b, p, x.shape[-1]))
      _, pk, pv = self.project(prefix)
      pk = attn_ops.rope(pk, jnp.broadcast_to(positions[:, :1], (b, p)), self.rope_theta)
      keys, values, mask = [pk] + keys, [pv] + values, [jnp.ones((b, 1, l, p), bool)] + mask
    y = attn_ops.dot_product_attention(q, jnp.concatenate(keys, 1), jnp.concatenate(values, 1),
                                       jnp.concatenate(mask, -1))
    return self.merge_heads(y)

  def __call__(self, x, memory, *, positions, reset):
    memory = reset_memory(memory, self.init_memory(x.shape[0]), reset)
    retrieved, memory = self.retrieve(x, memory)                     # (21)
    y = self.attend(x, retrieved, positions)                         # (22)-(23)
    u = self.write_norm(y) if self.write_norm is not None else y     # the memory's input
    q_out, memory = self.memory.queries(u, memory, "q_out")
    reads, memory = self.memory.write_read(u, q_out, memory)        # (24), then M*_t(y)
    return self.gate(y, self.memory.readout(reads, u)), memory      # (25)


class _WindowedTitans(nnx.Module):
  """Shared parts of MAG and MAL: BSWA with the persistent prefix, and the neural memory."""

  STREAMS = ("q", "k", "v")

  def __init__(self, d_model, num_heads, opts, *, block_len, rope_theta, dtype, rngs):
    self.attention = BlockSlidingWindowAttention(
        d_model, num_heads, block_len=block_len, mem_blocks=opts.window_blocks, stop_grad=False,
        dtype=dtype, rope_theta=rope_theta, rngs=rngs)
    self.memory = NeuralMemory(d_model, num_heads, opts, dtype=dtype, rngs=rngs)
    self.persistent = _persistent_param(opts.persistent_tokens, d_model, rngs)

  def init_memory(self, batch: int):
    return {"memory": self.memory.init_state(batch, self.STREAMS),
            "window": self.attention.init_memory(batch)}

  def window_attention(self, x, window, positions, reset):
    prefix = None if self.persistent is None else self.persistent[...]
    return self.attention(x, window, positions=positions, reset=reset, prefix=prefix)


class MemoryAsGate(_WindowedTitans):
  """MAG: o = SWA*(x) (x) M(x)."""

  def __init__(self, d_model, num_heads, opts, *, block_len, rope_theta, dtype, rngs):
    super().__init__(d_model, num_heads, opts, block_len=block_len, rope_theta=rope_theta,
                     dtype=dtype, rngs=rngs)
    self.gate = OutputGate(d_model, opts.output_gate, dtype=dtype, rngs=rngs)

  def __call__(self, x, memory, *, positions, reset):
    mem = reset_memory(memory["memory"], self.memory.init_state(x.shape[0], self.STREAMS), reset)
    y, window = self.window_attention(x, memory["window"], positions, reset)
    m, mem = self.memory(x, mem)
    return self.gate(y, m), {"memory": mem, "window": window}


class MemoryAsLayer(_WindowedTitans):
  """MAL: m = M(x); o = m + SWA*(RMSNorm(x + m))."""

  def __init__(self, d_model, num_heads, opts, *, block_len, rope_theta, dtype, rngs):
    super().__init__(d_model, num_heads, opts, block_len=block_len, rope_theta=rope_theta,
                     dtype=dtype, rngs=rngs)
    self.norm = nnx.RMSNorm(d_model, dtype=dtype, rngs=rngs)

  def __call__(self, x, memory, *, positions, reset):
    mem = reset_memory(memory["memory"], self.memory.init_state(x.shape[0], self.STREAMS), reset)
    m, mem = self.memory(x, mem)
    y, window = self.window_attention(self.norm(x + m), memory["window"], positions, reset)
    return m + y, {"memory": mem, "window": window}
