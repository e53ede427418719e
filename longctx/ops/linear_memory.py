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


def compressive_memory_increment(sigma_k: jax.Array, values: jax.Array, memory: jax.Array,
                                 norm: jax.Array, rule: str, eps: float, write_weights=None):
  """What one block of (sigma(K), V) adds to (M, z): returns (dM [B, H, D, D], dz [B, H, D]).

  write_weights [B, L] (optional, not in the paper): token t is written w_t times over, in M and in
  z alike: dM = sigma(K)^T diag(w) W, dz = sum_t w_t sigma(K_t). An integer w_t is exactly
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
  return jnp.einsum("blhd,blhe->bhde", sigma_k, written), jnp.sum(sigma_k, axis=1)


def compressive_memory_update(sigma_k: jax.Array, values: jax.Array, memory: jax.Array,
                              norm: jax.Array, rule: str, eps: float, write_weights=None):
  """Writes one block into (M, z) with plain float32 adds. Returns (M_s, z_s).
  See compressive_memory_increment for the arguments; compensated_add for long streams."""
  d_memory, d_norm = compressive_memory_increment(sigma_k, values, memory, norm, rule, eps,
                                                  write_weights)
  return memory + d_memory, norm + d_norm


def compensated_add(total: jax.Array, error: jax.Array, increment: jax.Array):
  """Kahan summation step: (total + increment, the rounding error of that add).

  Why: M and z are sums over every block. In float32 each add loses ~2^-24 of the running total,
  and those losses pile up with the number of blocks: over 8,192 blocks (1M tokens, block 128)
  the plain sum's error in M grew to ~1e-5 of its largest entry, about one key's own write, the
  signal a passkey read must find (tests/test_linear_memory.py, the many-blocks test). Carrying
  the lost low part `error` and subtracting it from the next increment keeps the error at a few
  ulps of the total, whatever the number of blocks. The exact sum is total - error.
  Gradients are those of the plain sum: d(error)/d(anything) is 1 - 1 = 0 symbolically.
  """
  corrected = increment - error
  new_total = total + corrected
  return new_total, (new_total - total) - corrected
