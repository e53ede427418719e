"""Compressive (linear-attention) memory of Infini-attention, arXiv 2404.07143 Sec. 2.1.

Per head: memory M in R^{D_k x D_v} and normaliser z in R^{D_k}, sigma = ELU + 1.
  retrieval:       A_mem = sigma(Q) M_{s-1} / (sigma(Q) z_{s-1} + eps)
  linear update:   M_s = M_{s-1} + sigma(K)^T V
  delta update:    M_s = M_{s-1} + sigma(K)^T (V - sigma(K) M_{s-1} / (sigma(K) z_{s-1} + eps))
  both:            z_s = z_{s-1} + sum_t sigma(K_t)
Shapes: q, k, v [B, L, H, D]; M [B, H, D, D]; z [B, H, D]. All in float32.

Under the delta rule M does not saturate: z keeps growing, so the subtracted readout shrinks and M
grows like z (a key written n >= 2 times reads back v / 2 with M = n v / 2; the test
test_repeated_key_readout_under_the_additive_normaliser pins this closed form).

Decisions (papers.md 3(e)): eps is added to the denominator (the paper has none; without it an
empty memory gives 0/0). With M_0 = 0, z_0 = 0 the numerator is exactly zero, so retrieval from an
empty memory is exactly zero, which is how we define it.
"""
import jax
import jax.numpy as jnp

LINEAR = "linear"
LINEAR_DELTA = "linear_delta"
UPDATE_RULES = (LINEAR, LINEAR_DELTA)


def elu_plus_one(x: jax.Array) -> jax.Array:
  """sigma(x) = ELU(x) + 1 > 0, the feature map of linear attention."""
  return jax.nn.elu(x) + 1.0


def compressive_memory_retrieve(sigma_q: jax.Array, memory: jax.Array, norm: jax.Array,
                                eps: float) -> jax.Array:
  """A_mem = sigma_q M / (sigma_q z + eps). sigma_q: [B, L, H, D] -> [B, L, H, D_v]."""
  numerator = jnp.einsum("blhd,bhde->blhe", sigma_q, memory)
  denominator = jnp.einsum("blhd,bhd->blh", sigma_q, norm) + eps
  return numerator / denominator[..., None]


def compressive_memory_update(sigma_k: jax.Array, values: jax.Array, memory: jax.Array,
                              norm: jax.Array, rule: str, eps: float, write_weights=None):
  """Writes one block of (sigma(K), V) into (M, z). Returns (M_s, z_s).

  write_weights [B, L] (optional, not in the paper): token t is written w_t times over, in M and in
  z alike: M_s = M + sigma(K)^T diag(w) W, z_s = z + sum_t w_t sigma(K_t). An integer w_t is exactly
  w_t copies of token t inside its block under both rules (every write of a block reads M_{s-1});
  copies in LATER blocks add the same only under the linear rule (the delta rule's later writes
  read the grown memory). data.filler_weight_max uses it to make a short training prompt's filler
  weigh what a long prompt's does (configs/passkey/infini.py)."""
  if rule == LINEAR:
    written = values
  elif rule == LINEAR_DELTA:
    # Only what the memory does not already return for these keys is written.
    written = values - compressive_memory_retrieve(sigma_k, memory, norm, eps)
  else:
    raise ValueError(f"unknown Infini memory update rule {rule!r}; expected one of {UPDATE_RULES}")
  if write_weights is not None:
    sigma_k = sigma_k * write_weights[:, :, None, None].astype(sigma_k.dtype)
  new_memory = memory + jnp.einsum("blhd,blhe->bhde", sigma_k, written)
  new_norm = norm + jnp.sum(sigma_k, axis=1)
  return new_memory, new_norm
