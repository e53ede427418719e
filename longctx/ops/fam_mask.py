"""The one attention mask of TransformerFAM (arXiv 2404.09173, Algorithm 2), as a pure function.

Block and FAM are computed together in ONE attention, as the paper does, so FAM costs the same
matmuls as BSWA plus F extra rows:
  queries [F_{tau-1}; block]                  F + L rows (the FAM query is a copy of the previous FAM)
  keys    [cached blocks; F_{tau-1}; block]   S + F + L columns (S = m * L cached slots)
Block query t: the valid cached slots, the whole previous FAM, and the block causally (keys 0..t),
i.e. Khat_t = Concat(K_{tau-m:tau-1}, K^F_{tau-1}, K_{tau,:t}).
FAM queries: the whole previous FAM and the WHOLE current block, not the cached blocks, i.e.
Ktil = Concat(K^F_{tau-1}, K_tau). Decision (papers.md 1(e).1-2): Algorithm 2 writes K_{tau,:t} for
the FAM keys too, but the FAM query has no position t inside the block; the text says FAM attends to
the current block and to itself (full), so both are full.
"""
import jax
import jax.numpy as jnp

from longctx.ops.attention import causal_mask


def fam_attention_mask(cache_valid: jax.Array, fam_len: int, block_len: int) -> jax.Array:
  """cache_valid [B, S] bool (False for cache slots not yet written) -> mask [B, 1, F+L, S+F+L].

  True where the query (row) may attend to the key (column); rows and columns in the order above.
  """
  b, s = cache_valid.shape
  f, l = fam_len, block_len
  fam_rows = jnp.concatenate([jnp.zeros((b, f, s), bool), jnp.ones((b, f, f + l), bool)], axis=-1)
  block_rows = jnp.concatenate([
      jnp.broadcast_to(cache_valid[:, None, :], (b, l, s)),
      jnp.ones((b, l, f), bool),
      jnp.broadcast_to(causal_mask(l)[None], (b, l, l)),
  ], axis=-1)
  return jnp.concatenate([fam_rows, block_rows], axis=1)[:, None]
