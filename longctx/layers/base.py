"""The attention-layer protocol shared by every memory mechanism.

Every attention layer is an NNX module with
  init_memory(batch) -> memory pytree (float32 arrays with a leading batch axis, or {} if none)
  __call__(x, memory, *, positions, reset) -> (y, new_memory)
where x is one block [B, L, d_model], positions [B, L] absolute token positions (RoPE continues
across blocks), and reset [B] bool marks examples whose memory must be cleared before this block
(start of a new document). Memory is never a mutable variable: it goes in and comes out, so the
decoder can carry it through jax.lax.scan.

Optional hook (FAM, longctx/layers/fam.py): a layer with `feedback_rows = R > 0` also processes R
rows of its own with the block; x is then [B, R + L, d_model] and the decoder layer calls its
`feedback_input(prompt, memory, reset)`, `store_feedback(memory, rows)` and `prompt_attention(p)`
(see longctx.models.decoder.DecoderLayer). `pass_state(memory, take)` is optional too (FAM's random
state passing across training steps).

A layer with an auxiliary training loss (compressive's attention reconstruction) returns a third
value, (y, new_memory, aux) with aux [B] float32 already weighted; the decoder sums it over layers
and the scan driver adds its mean over examples and blocks to the training loss.
"""
import jax
import jax.numpy as jnp
from flax import nnx


def reset_memory(memory, initial, reset: jax.Array):
  """Per example, replaces memory by its initial value where reset[b] is True (no Python branch)."""
  def pick(mem, init):
    mask = reset.reshape(reset.shape + (1,) * (mem.ndim - 1))
    return jnp.where(mask, init.astype(mem.dtype), mem)
  return jax.tree.map(pick, memory, initial)


def apply_flat(fn, x: jax.Array) -> jax.Array:
  """fn (dense layers acting on the last axis) applied to x [..., d] as a 2-D [N, d] array, the
  result reshaped back to x's leading axes.

  Why: on a 3-D input [B, L, d] the weight gradient of a dense layer contracts two axes (B and L),
  and XLA:CPU lays it out with transposing copies of the [B, L, f] activation gradients; on
  [B*L, d] it is one plain GEMM. Measured on 2 cores (d 256, SwiGLU 1024, 1,024 tokens): the MLP's
  forward 1.5x and its gradient 2.1x faster."""
  lead = x.shape[:-1]
  y = fn(x.reshape((-1, x.shape[-1])))
  return y.reshape(lead + y.shape[-1:])


class QKVAttention(nnx.Module):
  """Query/key/value/output projections common to all attention variants (no biases)."""

  def __init__(self, d_model: int, num_heads: int, *, dtype, rope_theta: float, rngs: nnx.Rngs):
    self.num_heads = num_heads
    self.head_dim = d_model // num_heads
    self.dtype = dtype
    self.rope_theta = rope_theta
    linear = lambda: nnx.Linear(d_model, d_model, use_bias=False, dtype=dtype, rngs=rngs)
    self.query, self.key, self.value, self.out = linear(), linear(), linear(), linear()

  def project(self, x: jax.Array):
    """x [B, L, d_model] -> q, k, v each [B, L, H, D]."""
    b, l, _ = x.shape
    shape = (b, l, self.num_heads, self.head_dim)
    return tuple(apply_flat(proj, x).reshape(shape) for proj in (self.query, self.key, self.value))

  def merge_heads(self, a: jax.Array) -> jax.Array:
    """a [B, L, H, D] -> output projection [B, L, d_model]."""
    b, l, h, d = a.shape
    return apply_flat(self.out, a.reshape(b, l, h * d).astype(self.dtype))
