"""Infini-attention (Munkhdalai et al., arXiv 2404.07143): local causal attention inside the block
plus a compressive linear-attention memory of all earlier blocks, mixed by a learned per-head gate.

Per block s, with the layer's own Q, K, V (no new projections; papers.md 3(a)):
  A_dot = softmax(rope(Q) rope(K)^T / sqrt(D)) V         causal, inside the block only
  A_mem = sigma(Q) M_{s-1} / (sigma(Q) z_{s-1} + eps)     un-rotated Q: no positions on the memory
  (M_s, z_s) = update(M_{s-1}, z_{s-1}, sigma(K), V)       'linear' or 'linear_delta'
  A = sigmoid(beta) * A_mem + (1 - sigmoid(beta)) * A_dot  beta: one scalar per head
Decisions where the paper is silent or loose (papers.md 3(e)):
  - scale 1/sqrt(D) (the paper writes sqrt(d_model));
  - retrieval happens before the update, so a block never reads its own keys from the memory;
  - M_0 = 0, z_0 = 0, eps in the denominator, empty-memory retrieval = 0;
  - beta initialised to `gate_init` (default 0: an equal mix, the from-scratch setting; a very
    negative value freezes the gate, see implementations.md 2.2, so we do not default to one);
  - gradients flow through M and z across blocks (BPTT over the whole sequence, the paper's setup);
    the decoder's `bptt_blocks` truncates if asked.
Memory is float32 whatever the activation dtype. `compensated_sum` (default off; not in the paper)
sums M and z with Kahan compensation (ops/linear_memory.compensated_add): a plain float32 sum over
8K blocks (1M tokens) drifts by about one key's write. Off by default because it changed no passkey
score at 128K or 1M (experiments/infini-attention attempts 14-15) and it doubles the memory
carried per block, which backpropagation keeps for every block.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from longctx.ops import attention as attn_ops
from longctx.ops import linear_memory
from longctx.layers.base import QKVAttention, reset_memory


class InfiniAttention(QKVAttention):

  def __init__(self, d_model, num_heads, *, update_rule: str, gate_init: float, eps: float, dtype,
               rope_theta, rngs, compensated_sum: bool = False):
    super().__init__(d_model, num_heads, dtype=dtype, rope_theta=rope_theta, rngs=rngs)
    if update_rule not in linear_memory.UPDATE_RULES:
      raise ValueError(f"model.infini.update_rule={update_rule!r}: expected one of {linear_memory.UPDATE_RULES}")
    self.update_rule = update_rule
    self.eps = eps
    self.compensated_sum = compensated_sum
    self.gate = nnx.Param(jnp.full((num_heads,), gate_init, jnp.float32))  # beta, [H]

  def init_memory(self, batch: int):
    h, d = self.num_heads, self.head_dim
    state = {"memory": jnp.zeros((batch, h, d, d), jnp.float32),  # M [B, H, D_k, D_v]
             "norm": jnp.zeros((batch, h, d), jnp.float32)}        # z [B, H, D_k]
    if self.compensated_sum:  # Kahan rounding errors of M and z, same shapes
      state.update(memory_error=jnp.zeros_like(state["memory"]), norm_error=jnp.zeros_like(state["norm"]))
    return state

  def __call__(self, x, memory, *, positions, reset, write_weights=None):
    """write_weights [B, L] or None: per-token write multiplicity of the memory update
    (ops/linear_memory.compressive_memory_update; data.filler_weight_max)."""
    b, l, _ = x.shape
    memory = reset_memory(memory, self.init_memory(b), reset)
    q, k, v = self.project(x)

    # Memory path: un-rotated q/k, float32.
    sigma_q = linear_memory.elu_plus_one(q.astype(jnp.float32))
    sigma_k = linear_memory.elu_plus_one(k.astype(jnp.float32))
    v32 = v.astype(jnp.float32)
    a_mem = linear_memory.compressive_memory_retrieve(sigma_q, memory["memory"], memory["norm"],
                                                      self.eps)
    args = (sigma_k, v32, memory["memory"], memory["norm"], self.update_rule, self.eps)
    if self.compensated_sum:
      d_m, d_z = linear_memory.compressive_memory_increment(*args, write_weights=write_weights)
      new_m, m_err = linear_memory.compensated_add(memory["memory"], memory["memory_error"], d_m)
      new_z, z_err = linear_memory.compensated_add(memory["norm"], memory["norm_error"], d_z)
      new_memory = {"memory": new_m, "norm": new_z, "memory_error": m_err, "norm_error": z_err}
    else:
      new_m, new_z = linear_memory.compressive_memory_update(*args, write_weights=write_weights)
      new_memory = {"memory": new_m, "norm": new_z}

    # Local path: rotary positions, causal inside the block.
    q_rot, k_rot = attn_ops.rope_pair(q, k, positions, self.rope_theta)
    a_dot = attn_ops.dot_product_attention(q_rot, k_rot, v, attn_ops.causal_mask(l)[None, None])

    g = jax.nn.sigmoid(self.gate[...])[None, None, :, None]  # [1, 1, H, 1]
    a = g * a_mem + (1.0 - g) * a_dot.astype(jnp.float32)
    return self.merge_heads(a), new_memory
