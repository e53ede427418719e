"""Continuous long-term memory of the infinity-former (Martins et al., arXiv 2109.00301), pure jnp.

A sequence of vectors x_1..x_P placed at positions t_i in [0, 1] becomes a continuous signal
  x(t) ~= B^T psi(t),   psi(t) in R^N: Gaussian radial basis functions psi_j(t) = N(t; c_j, s_j^2)
with coefficients B [N, E] fitted by ridge regression (papers.md 4(a)):
  F = [psi(t_1) .. psi(t_P)]  [N, P],   B = G^T X,   G = F^T (F F^T + lambda I)^-1  [P, N].
Attention over the signal uses one Gaussian density p = N(mu, sigma^2) per query and head; the
read-out needs only the expectation of the basis under p, which is closed form for Gaussian RBFs:
  E_p[psi_j] = int N(t; mu, sigma^2) N(t; c_j, s_j^2) dt = N(mu; c_j, sigma^2 + s_j^2),
so the value read out, V^T E_p[psi] = W_V^T B^T E_p[psi] = W_V^T E_p[x(t)], is the expectation of the
(projected) signal under the query's density. The integral is over the real line, not [0, 1], as in
the official code. Everything is plain jnp and differentiable by autodiff (no custom VJP: the
official hand-written backward of the continuous softmax is the same Jacobian, obtained here by
differentiating the closed form).

Shapes: N basis functions, P points, E feature width, M sample points, K histogram bins.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_factor, cho_solve

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_basis(num_basis: int, widths) -> tuple:
  """Centres c [N] and widths s [N] of the official layout: for each width, num_basis / len(widths)
  centres evenly spaced on [0, 1] (both ends included). num_basis must divide evenly."""
  widths = tuple(float(w) for w in widths)
  if not widths or num_basis % len(widths):
    raise ValueError(f"num_basis={num_basis} must be a positive multiple of len(widths)={len(widths)}")
  per_width = num_basis // len(widths)
  centres = jnp.linspace(0.0, 1.0, per_width, dtype=jnp.float32)
  # Centre-major order (official meshgrid(centres, widths).flatten()): both widths at each centre.
  c = jnp.repeat(centres, len(widths))
  s = jnp.tile(jnp.asarray(widths, jnp.float32), per_width)
  return c, s


def gaussian_density(x, mean, var):
  """N(x; mean, var), elementwise with broadcasting."""
  return jnp.exp(-0.5 * jnp.square(x - mean) / var - 0.5 * jnp.log(var) - _LOG_SQRT_2PI)


def basis_values(t, centres, widths):
  """psi(t): t [..., P] -> [..., P, N]."""
  return gaussian_density(t[..., None], centres, jnp.square(widths))


def ridge_operator(positions, centres, widths, ridge_lambda: float):
  """G = F^T (F F^T + lambda I)^-1 [P, N] for fixed positions [P], by a Cholesky solve (the matrix
  F F^T + lambda I is symmetric positive definite for lambda > 0; no explicit inverse)."""
  f = basis_values(positions, centres, widths).T  # F [N, P]
  gram = f @ f.T + ridge_lambda * jnp.eye(f.shape[0], dtype=f.dtype)
  # (F F^T + lambda I) G^T = F  =>  G^T = solve(gram, F).
  return cho_solve(cho_factor(gram, lower=True), f).T


def ridge_fit(x, operator):
  """Coefficients B = G^T X: x [..., P, E], operator G [P, N] (or one per example, [..., P, N])
  -> B [..., N, E]."""
  return jnp.einsum("...pe,...pn->...ne", x, operator.astype(x.dtype))


def evaluate_signal(coeffs, t, centres, widths):
  """x(t) = B^T psi(t): coeffs [..., N, E], t [..., P] -> [..., P, E]."""
  return jnp.einsum("...pn,...ne->...pe", basis_values(t, centres, widths), coeffs)


def basis_expectation(mu, var, centres, widths):
  """E_{N(mu, var)}[psi_j] = N(mu; c_j, var + s_j^2): mu, var [...] -> [..., N]."""
  return gaussian_density(mu[..., None], centres, var[..., None] + jnp.square(widths))


def density_parameters(scores, w_mu, w_var, min_var: float):
  """mu = sigmoid(w_mu . scores), sigma^2 = max(softplus(w_var . scores), min_var).

  scores [..., N] (q . k_j / sqrt(D) over the N basis keys); w_mu, w_var [N]. Returns mu, var [...].
  The floor on sigma^2 is the official clamp (1e-6 sorting, 1e-4 GPT-2).
  """
  mu = jax.nn.sigmoid(scores @ w_mu)
  var = jnp.maximum(jax.nn.softplus(scores @ w_var), min_var)
  return mu, var


def continuous_attention(q, keys, values, w_mu, w_var, centres, widths, min_var: float):
  """Continuous softmax attention over a basis-coefficient memory.

  q [B, L, H, D]; keys, values [B, N, H, D] (projections of the coefficients B); w_mu, w_var [N].
  Returns (read-out [B, L, H, D], mu [B, H, L], var [B, H, L]). Scale 1/sqrt(D).
  """
  scores = jnp.einsum("blhd,bnhd->bhln", q, keys) * q.shape[-1] ** -0.5
  mu, var = density_parameters(scores, w_mu, w_var, min_var)
  r = basis_expectation(mu, var, centres, widths)  # [B, H, L, N]
  return jnp.einsum("bhln,bnhd->blhd", r, values), mu, var


def density_histogram(mu, var, num_bins: int):
  """Mass of the densities N(mu, var) in each of num_bins equal bins of [0, 1], summed over all
  densities and normalised: mu, var [B, ...] -> [B, K]. The mass outside [0, 1] is dropped (as the
  official code does); a histogram with no mass at all falls back to uniform."""
  edges = jnp.linspace(0.0, 1.0, num_bins + 1, dtype=jnp.float32)
  b = mu.shape[0]
  mu, sd = mu.reshape(b, -1, 1), jnp.sqrt(var).reshape(b, -1, 1)
  cdf = jax.scipy.stats.norm.cdf((edges - mu) / sd)  # [B, Q, K + 1]
  mass = jnp.sum(cdf[..., 1:] - cdf[..., :-1], axis=1)  # [B, K]
  total = jnp.sum(mass, axis=-1, keepdims=True)
  uniform = jnp.full_like(mass, 1.0 / num_bins)
  return jnp.where(total > 1e-12, mass / jnp.maximum(total, 1e-12), uniform)


def histogram_quantiles(histogram, num_samples: int):
  """Deterministic (stratified) sampling from a histogram on [0, 1]: the quantiles u_i = i / M,
  i = 1..M, of the piecewise-uniform density with bin masses `histogram` [B, K] -> [B, M], sorted.

  A uniform histogram gives exactly t_i = i / M, the official uniform sample points, so sticky
  sampling with no attention preference equals uniform sampling. Decision (the official code draws
  M bins at random with torch.distributions.Categorical and takes their left edges): the quantile
  function of the same histogram is its noise-free version (every bin gets ~ M * mass points),
  needs no random key in the memory, and is deterministic given the carried state.
  """
  k = histogram.shape[-1]
  u = jnp.arange(1, num_samples + 1, dtype=jnp.float32) / num_samples  # [M]

  def one(hist):
    hist = hist / jnp.sum(hist)
    cdf = jnp.cumsum(hist)
    idx = jnp.clip(jnp.searchsorted(cdf, u, side="left"), 0, k - 1)  # bin of each quantile
    below = jnp.where(idx > 0, cdf[jnp.maximum(idx - 1, 0)], 0.0)
    frac = jnp.clip((u - below) / jnp.maximum(hist[idx], 1e-12), 0.0, 1.0)
    return (idx + frac) / k
  return jax.vmap(one)(histogram)


def histogram_categorical_draw(keys, histogram, num_samples: int):
  """The official code's sticky draw (finetune_gpt2 long_term_attention.py, update_inf): per
  example, num_samples bins drawn i.i.d. from Categorical(histogram) and their LEFT edges j / K,
  sorted (its within-bin offset comes from a one-category Categorical, so it is always 0).
  keys [B] (typed PRNG keys), histogram [B, K] -> [B, M]. Unlike histogram_quantiles, points can
  coincide (a bin drawn twice gives the same point twice) and a draw is noisy around M * mass.
  Drawn by inversion: u ~ U[0, 1) per sample, bin j where cdf[j-1] <= u < cdf[j] (a bin with no
  mass is never drawn), so the draw is a plain function of jax.random.uniform's numbers."""
  k = histogram.shape[-1]

  def one(key, hist):
    cdf = jnp.cumsum(hist / jnp.sum(hist))
    u = jax.random.uniform(key, (num_samples,), jnp.float32)
    bins = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, k - 1)  # clip: cdf[-1] rounds < 1
    return jnp.sort(bins.astype(jnp.float32) / k)
  return jax.vmap(one)(keys, histogram)


def contraction_positions(num_samples: int, num_new: int, tau):
  """Positions of the refit after a contraction (official G_inf layout): the M samples of the old
  signal at tau * i / M (i = 1..M), the new vectors at tau + (1 - tau) * j / P (j = 1..P).
  tau: a float -> [M + P]; an array [...] (one tau per example) -> [..., M + P]."""
  tau = jnp.asarray(tau, jnp.float32)[..., None]
  old = tau * jnp.arange(1, num_samples + 1, dtype=jnp.float32) / num_samples
  new = tau + (1.0 - tau) * jnp.arange(1, num_new + 1, dtype=jnp.float32) / num_new
  return jnp.concatenate([old, new], axis=-1)


def equal_share_tau(num_written):
  """tau_n = n / (n + 1) for a memory that already holds n >= 1 blocks: the n old blocks keep n / (n + 1)
  of [0, 1] and the new one gets 1 / (n + 1), so after every contraction each block written so far
  spans an equal 1 / (n + 1) (uniform sampling). NOT the paper's (a fixed tau, a geometric weight
  per block, see contraction_shares): longctx's `tau_schedule='equal'`."""
  n = jnp.maximum(jnp.asarray(num_written, jnp.float32), 1.0)
  return n / (n + 1.0)


def first_fit_positions(num_new: int):
  """Positions of the first fit of an empty memory: (i + 0.5) / P spread over [0, 1] (official)."""
  return (jnp.arange(num_new, dtype=jnp.float32) + 0.5) / num_new


def contraction_shares(num_blocks: int, tau: float, schedule: str = "fixed"):
  """[num_blocks] share of [0, 1] that each written block (oldest first) spans in the memory signal
  after uniform-sampling contractions with a fixed tau: the first fit spans all of [0, 1] and every
  contraction squeezes the old signal by tau, so a block written a contractions ago spans
  (1 - tau) tau^a and the first tau^(num_blocks - 1). A reader with a flat density over [0, 1]
  therefore weighs the past as an exponential moving average over blocks (numpy; sums to 1).
  schedule='equal' (tau_n = n / (n + 1), equal_share_tau): every block 1 / num_blocks."""
  if num_blocks < 1 or not 0.0 < tau < 1.0:
    raise ValueError(f"contraction_shares: need num_blocks >= 1 and 0 < tau < 1, got {num_blocks}, {tau}")
  if schedule == "equal":
    return np.full(num_blocks, 1.0 / num_blocks)
  if schedule != "fixed":
    raise ValueError(f"contraction_shares: schedule={schedule!r} is not 'fixed' or 'equal'")
  age = num_blocks - 1 - np.arange(num_blocks)
  shares = (1.0 - tau) * tau ** age.astype(np.float64)
  shares[0] = tau ** (num_blocks - 1)
  return shares


def contract(coeffs, sample_t, new_x, contraction_operator, centres, widths):
  """One unbounded-memory update: evaluate the old signal at sample_t [B, M] (sorted, in [0, 1]),
  squeeze those samples into [0, tau] and append the new vectors in (tau, 1] (the layout of
  `contraction_operator` = ridge_operator(contraction_positions(...)): [P', N], or [B, P', N] with
  one tau per example), refit.

  coeffs [B, N, E], new_x [B, P, E] -> new coeffs [B, N, E].
  """
  old = evaluate_signal(coeffs, sample_t, centres, widths)  # [B, M, E]
  return ridge_fit(jnp.concatenate([old, new_x.astype(old.dtype)], axis=1), contraction_operator)


def gaussian_kl_to_prior(mu, var, sigma0: float, mu0=None):
  """KL(N(mu, var) || N(mu0, sigma0^2)) elementwise, as the official infinity-former code's optional
  regulariser (not in the paper). mu0 None: the mean term is dropped (the code's default), i.e.
  0.5 (var / sigma0^2 - log(var / sigma0^2) - 1); else + 0.5 (mu - mu0)^2 / sigma0^2."""
  ratio = var / sigma0 ** 2
  kl = 0.5 * (ratio - jnp.log(ratio) - 1.0)
  if mu0 is not None:
    kl = kl + 0.5 * jnp.square(mu - mu0) / sigma0 ** 2
  return kl
