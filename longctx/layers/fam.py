"""TransformerFAM: feedback attention memory on block sliding-window attention (arXiv 2404.09173,
Algorithm 2; papers.md section 1).

Per layer, a FAM of F = fam_len activations [B, F, d_model] is carried from block to block next to
BSWA's cache of the last m blocks (the cache logic is BlockSlidingWindowAttention's). At block tau
the layer processes the rows [F_{tau-1}; I_tau] with its own weights (no new weights):
  - ONE attention with ONE mask (longctx.ops.fam_mask): block queries see the cached blocks, the
    previous FAM and the block causally; FAM queries (a copy of the previous FAM) see the previous
    FAM and the whole block, not the cached blocks;
  - the decoder layer adds the residuals and runs its feed-forward on all F + L rows, so the new FAM
    F_tau = FF(PreLN(A^F)) + A^F goes through the same MLP as the block (the `feedback_rows` hook
    of longctx.models.decoder.DecoderLayer), and stores F_tau with `store_feedback`.

Decisions where the paper is open (papers.md 1(e)):
  - Initial FAM (1(e).3, prompt tuning): the decoder owns F learned embeddings (`feedback_prompt`)
    and propagates them up the stack ALONE: P_0 = prompt, P_{l+1} = layer_l(P_l), the prompt rows
    attending (fully) to each other only. On a reset example, layer l's previous FAM is P_l. This is
    the prompt "as a prefix of the first block" of a causal decoder: a prefix never sees the tokens
    after it. Feeding layer l the FAM *output* of layer l-1 for the same block instead would let a
    block token at layer >= 1 see the block's future tokens through the FAM (which attended to the
    whole block), so that reading is rejected. P_l does not depend on the data; the decoder
    computes it (F rows per layer, unbatched) only in blocks where some example resets.
  - The first update (on a reset example) uses a zero residual: A^F_1 = SelfAttention(...) + 0.
  - Positions (1(e).5, App. B.2): block tokens keep their own positions; the previous FAM gets the
    last F positions of the block it compressed, i.e. positions[:, 0] - F + (0..F-1) (also for the
    prompt, which then sits just before the first block, and for a FAM passed from the previous
    training step).
  - Random state passing (App. B.2): `pass_state` makes batch element 0's FAM every example's
    previous FAM on the next reset (flag `fam_passed`), with its usual residual (it is a real FAM,
    not the prompt); the BSWA cache is still reset.
Option outside the paper: `state_norm` stores RMSNorm(F_tau) (a learned scale per layer) instead
of F_tau. Under Algorithm 2 the FAM's residual is the FAM itself, so every block adds its update
and the state grows linearly with the number of blocks (experiments/fam/probe_fam_norms.py: RMS 2
after 1 block, 30 after 16, 125 after 64 in a trained model); read through PreLN, what a block
wrote long ago is then a vanishing share of the state. Off by default.
"""
import jax.numpy as jnp
from flax import nnx

from longctx.layers.local import BlockSlidingWindowAttention
from longctx.ops import attention as attn_ops
from longctx.ops.fam_mask import fam_attention_mask


class FeedbackAttentionMemory(BlockSlidingWindowAttention):
  """FAM of `fam_len` rows per layer + a BSWA cache of `mem_blocks` blocks (gradients flow into both)."""

  def __init__(self, d_model, num_heads, *, block_len: int, fam_len: int, mem_blocks: int, dtype,
               rope_theta, rngs, state_norm: bool = False):
    super().__init__(d_model, num_heads, block_len=block_len, mem_blocks=mem_blocks,
                     stop_grad=False, dtype=dtype, rope_theta=rope_theta, rngs=rngs)
    self.d_model = d_model
    self.fam_len = fam_len
    self.feedback_rows = fam_len  # the decoder-layer hook: rows processed with the block
    self.state_norm = nnx.RMSNorm(d_model, dtype=dtype, rngs=rngs) if state_norm else None

  def init_memory(self, batch: int):
    memory = dict(self.init_cache(batch))
    memory["fam"] = jnp.zeros((batch, self.fam_len, self.d_model), jnp.float32)  # [B, F, d_model]
    memory["fam_passed"] = jnp.zeros((batch,), bool)  # True: use `fam` even on reset (RSP)
    return memory

  def feedback_input(self, prompt, memory, reset):
    """The previous FAM this layer processes, and its residual. prompt [1, F, d_model] (P_l, this
    layer's propagated prompt) -> (rows, residual), both [B, F, d_model]."""
    use_prompt = (reset & ~memory["fam_passed"])[:, None, None]
    rows = jnp.where(use_prompt, prompt, memory["fam"].astype(prompt.dtype))
    return rows, jnp.where(use_prompt, jnp.zeros_like(rows), rows)

  def store_feedback(self, memory, rows):
    """rows [B, F, d_model]: the new FAM F_tau (after the feed-forward); RMSNorm(F_tau) with
    `state_norm`."""
    if self.state_norm is not None:
      rows = self.state_norm(rows)
    return dict(memory, fam=rows.astype(jnp.float32), fam_passed=jnp.zeros_like(memory["fam_passed"]))

  def pass_state(self, memory, take):
    """Random state passing: where `take` (a scalar bool), every example's next reset starts from
    batch element 0's FAM instead of the prompt."""
    fam0 = jnp.broadcast_to(memory["fam"][:1], memory["fam"].shape)
    return dict(memory, fam=jnp.where(take, fam0, memory["fam"]),
                fam_passed=jnp.full_like(memory["fam_passed"], take))

  def prompt_attention(self, prompt):
    """Attention of the (normalised) prompt rows [1, F, d_model] among themselves (full)."""
    q, k, v = self.project(prompt)
    positions = jnp.arange(self.fam_len, dtype=jnp.int32)[None]  # only differences matter
    q, k = attn_ops.rope_pair(q, k, positions, self.rope_theta)
    mask = jnp.ones((1, 1, self.fam_len, self.fam_len), bool)
    return self.merge_heads(attn_ops.dot_product_attention(q, k, v, mask))

  def __call__(self, x, memory, *, positions, reset):
    """x [B, F + L, d_model]: the normalised rows [F_{tau-1}; I_tau]; positions [B, L] of the block.
    Returns (y [B, F + L, d_model], memory with the cache updated; `fam` is stored by the decoder
    layer after its feed-forward)."""
    f = self.fam_len
    b, n, _ = x.shape
    l = n - f
    q, k, v = self.project(x)
    fam_positions = positions[:, :1] - f + jnp.arange(f, dtype=positions.dtype)[None]
    all_positions = jnp.concatenate([fam_positions, positions], axis=1)  # [B, F + L]
    q, k = attn_ops.rope_pair(q, k, all_positions, self.rope_theta)
    cache = self.read_cache(memory, reset)
    if self.mem_blocks:
      cached_k, cached_v = cache["keys"].astype(k.dtype), cache["values"].astype(v.dtype)
      valid = cache["valid"]
    else:
      cached_k, cached_v, valid = k[:, :0], v[:, :0], jnp.zeros((b, 0), bool)
    keys = jnp.concatenate([cached_k, k], axis=1)     # [B, m*L + F + L, H, D]
    values = jnp.concatenate([cached_v, v], axis=1)
    mask = fam_attention_mask(valid, f, l)            # [B, 1, F + L, m*L + F + L]
    y = self.merge_heads(attn_ops.dot_product_attention(q, keys, values, mask))
    new_memory = self.write_cache(cache, k[:, f:], v[:, f:])  # only block keys are cached
    new_memory.update(fam=memory["fam"], fam_passed=memory["fam_passed"])
    return y, new_memory
