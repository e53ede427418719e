"""longctx.ops.continuous_attention against independent float64 numpy references: numerical
quadrature of the basis expectation, ridge regression with an explicit inverse (fine in a test),
the histogram from math.erf, its quantiles by np.interp on the CDF, and finite differences."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from longctx.ops import continuous_attention as cont


def np_gauss(x, mean, var):
  return np.exp(-0.5 * (x - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)


def np_basis(num_basis, widths):
  """Centres evenly spaced on [0, 1] for each width (both widths at each centre)."""
  per = num_basis // len(widths)
  c = np.repeat(np.linspace(0, 1, per), len(widths))
  s = np.tile(np.asarray(widths, float), per)
  return c, s


def np_ridge_operator(positions, c, s, lam):
  f = np_gauss(positions[None, :], c[:, None], s[:, None] ** 2)  # F [N, P]
  return f.T @ np.linalg.inv(f @ f.T + lam * np.eye(len(c)))     # G [P, N]


def np_signal(coeffs, t, c, s):
  """x(t) = B^T psi(t): coeffs [N, E], t [P] -> [P, E]."""
  return np_gauss(t[:, None], c[None], s[None] ** 2) @ coeffs


def np_histogram(mu, var, num_bins):
  """Mass of each N(mu, var) in the bins of [0, 1], summed, normalised (math.erf)."""
  edges = np.linspace(0, 1, num_bins + 1)
  cdf = lambda x, m, v: 0.5 * (1 + math.erf((x - m) / math.sqrt(2 * v)))
  mass = np.zeros(num_bins)
  for m, v in zip(np.ravel(mu), np.ravel(var)):
    for k in range(num_bins):
      mass[k] += cdf(edges[k + 1], m, v) - cdf(edges[k], m, v)
  return mass / mass.sum()


def np_quantiles(hist, num_samples):
  """Inverse of the piecewise-linear CDF through (edge_k, cumulative mass)."""
  edges = np.linspace(0, 1, len(hist) + 1)
  cdf = np.concatenate([[0.0], np.cumsum(hist) / np.sum(hist)])
  u = np.arange(1, num_samples + 1) / num_samples
  return np.interp(u, cdf, edges)


def test_basis_layout_matches_reference():
  c, s = cont.gaussian_basis(12, (0.01, 0.05))
  c_ref, s_ref = np_basis(12, (0.01, 0.05))
  np.testing.assert_allclose(np.asarray(c), c_ref, atol=1e-7)
  np.testing.assert_allclose(np.asarray(s), s_ref, atol=1e-9)
  with pytest.raises(ValueError, match="num_basis"):
    cont.gaussian_basis(7, (0.01, 0.05))


@pytest.mark.parametrize("mu,var", [(0.3, 1e-3), (0.95, 0.02), (0.5, 1e-6), (-0.2, 0.3)])
def test_expectation_matches_quadrature(mu, var):
  """E_{N(mu, var)}[psi_j] against the trapezoid rule on a grid fine enough for the narrowest
  Gaussian involved (width 0.005 basis, sigma down to 1e-3)."""
  c, s = np_basis(8, (0.005, 0.05))
  got = np.asarray(cont.basis_expectation(jnp.float32(mu), jnp.float32(var),
                                          *cont.gaussian_basis(8, (0.005, 0.05))))
  t = np.linspace(-4.0, 5.0, 2_000_001)
  integrand = np_gauss(t[None], mu, var) * np_gauss(t[None], c[:, None], s[:, None] ** 2)
  ref = np.trapezoid(integrand, t, axis=-1)
  assert np.max(ref) > 1e-2  # some basis function overlaps the density
  np.testing.assert_allclose(got, ref, rtol=2e-4, atol=1e-5 * np.max(ref))


def test_continuous_attention_matches_numpy_and_check_grads():
  rng = np.random.default_rng(0)
  b, l, n, h, d = 2, 3, 8, 2, 4
  c, s = cont.gaussian_basis(n, (0.05, 0.2))
  q, keys, values = (rng.normal(size=shape) for shape in ((b, l, h, d), (b, n, h, d), (b, n, h, d)))
  w_mu, w_var = rng.normal(size=(2, n)) * 0.5
  z, mu, var = cont.continuous_attention(*(jnp.asarray(a, jnp.float32) for a in
                                           (q, keys, values, w_mu, w_var)), c, s, 1e-6)
  # numpy transcription of papers.md 4(a) per (example, head, query).
  c_np, s_np = np_basis(n, (0.05, 0.2))
  for bi in range(b):
    for hi in range(h):
      for li in range(l):
        scores = keys[bi, :, hi] @ q[bi, li, hi] / np.sqrt(d)
        m = 1 / (1 + np.exp(-scores @ w_mu))
        v = max(np.log1p(np.exp(scores @ w_var)), 1e-6)
        r = np_gauss(m, c_np, v + s_np ** 2)
        np.testing.assert_allclose(float(mu[bi, hi, li]), m, rtol=1e-5)
        np.testing.assert_allclose(float(var[bi, hi, li]), v, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(z[bi, li, hi]), r @ values[bi, :, hi], rtol=1e-4,
                                   atol=1e-4)
  # Gradients w.r.t. every input by finite differences, in float64.
  with jax.enable_x64(True):
    c64, s64 = jnp.asarray(c_np), jnp.asarray(s_np)
    fn = lambda *a: cont.continuous_attention(*a, c64, s64, 1e-6)[0]
    check_grads(fn, tuple(jnp.asarray(a, jnp.float64) for a in (q, keys, values, w_mu, w_var)),
                order=2, modes=("rev",), atol=1e-5, rtol=1e-5)


def test_ridge_operator_matches_explicit_inverse():
  c, s = cont.gaussian_basis(32, (0.02, 0.06))
  t = np.linspace(0.01, 0.99, 50)
  got = np.asarray(cont.ridge_operator(jnp.asarray(t, jnp.float32), c, s, 1.0))
  ref = np_ridge_operator(t, *np_basis(32, (0.02, 0.06)), 1.0)
  np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


def _reconstruction_error(num_basis, x, t):
  width = 1.0 / num_basis  # widths proportional to the centre spacing
  c, s = cont.gaussian_basis(num_basis, (width, 2 * width))
  g = cont.ridge_operator(jnp.asarray(t, jnp.float32), c, s, 1e-3)
  coeffs = cont.ridge_fit(jnp.asarray(x, jnp.float32), g)
  fitted = np.asarray(cont.evaluate_signal(coeffs, jnp.asarray(t, jnp.float32), c, s))
  return float(np.sqrt(np.mean((fitted - x) ** 2)))


def test_reconstruction_error_falls_as_the_basis_grows():
  t = (np.arange(256) + 0.5) / 256
  x = np.stack([np.sin(2 * np.pi * 3 * t), np.cos(2 * np.pi * 5 * t) * t, np.exp(-t)], -1)
  errors = [_reconstruction_error(n, x, t) for n in (8, 16, 32, 64)]
  assert all(a > 1.5 * b for a, b in zip(errors, errors[1:])), errors
  assert errors[-1] < 0.02 * np.std(x), errors


def test_contract_matches_numpy_and_keeps_a_constant_signal():
  """20 contractions of a constant (per feature) signal with constant new vectors, official
  sorting setting (N = 512, widths 0.01/0.05, lambda 1, tau 0.75, M = 512): the signal stays
  within 1% of the constant on [0.02, 0.98]. The first contraction is checked against numpy."""
  n, m, l, tau = 512, 512, 64, 0.75
  c, s = cont.gaussian_basis(n, (0.01, 0.05))
  c_np, s_np = np_basis(n, (0.01, 0.05))
  level = np.array([[1.0, -2.0, 0.5]])                        # [1, E]
  new = np.broadcast_to(level[:, None], (1, l, 3)).astype(np.float32)
  first = cont.ridge_operator(cont.first_fit_positions(l), c, s, 1.0)
  op = cont.ridge_operator(cont.contraction_positions(m, l, tau), c, s, 1.0)
  coeffs = cont.ridge_fit(jnp.asarray(new), first)
  sample_t = jnp.arange(1, m + 1, dtype=jnp.float32)[None] / m
  # numpy reference of one contraction.
  pos = np.concatenate([tau * np.arange(1, m + 1) / m, tau + (1 - tau) * np.arange(1, l + 1) / l])
  old = np_signal(np.asarray(coeffs[0], np.float64), np.arange(1, m + 1) / m, c_np, s_np)
  ref = np_ridge_operator(pos, c_np, s_np, 1.0).T @ np.concatenate([old, new[0]])
  got = cont.contract(coeffs, sample_t, jnp.asarray(new), op, c, s)
  # Compared as signals: the coefficients of overlapping RBFs are ill-conditioned in float32.
  grid = np.linspace(0, 1, 201)
  np.testing.assert_allclose(np.asarray(cont.evaluate_signal(got, jnp.asarray(grid, jnp.float32)[None],
                                                             c, s))[0],
                             np_signal(ref, grid, c_np, s_np), atol=1e-3)
  step = jax.jit(lambda coeffs: cont.contract(coeffs, sample_t, jnp.asarray(new), op, c, s))
  for _ in range(20):
    coeffs = step(coeffs)
  t = jnp.linspace(0.02, 0.98, 97)
  signal = np.asarray(cont.evaluate_signal(coeffs, t[None], c, s))[0]
  np.testing.assert_allclose(signal, np.broadcast_to(level, signal.shape), rtol=1e-2, atol=1e-2)


def test_contraction_squeezes_old_content_into_tau():
  """A ramp x(t) = t contracted with zeros: the old content now lives on [0, tau] as t / tau."""
  n, m, l, tau = 128, 256, 32, 0.5
  c, s = cont.gaussian_basis(n, (0.01, 0.03))
  t_fit = cont.first_fit_positions(256)
  coeffs = cont.ridge_fit(t_fit[None, :, None], cont.ridge_operator(t_fit, c, s, 1e-2))
  op = cont.ridge_operator(cont.contraction_positions(m, l, tau), c, s, 1e-2)
  sample_t = jnp.arange(1, m + 1, dtype=jnp.float32)[None] / m
  coeffs = cont.contract(coeffs, sample_t, jnp.zeros((1, l, 1)), op, c, s)
  t = np.linspace(0.05, 0.45, 41)
  signal = np.asarray(cont.evaluate_signal(coeffs, jnp.asarray(t, jnp.float32)[None], c, s))[0, :, 0]
  np.testing.assert_allclose(signal, t / tau, atol=0.02)
  late = np.asarray(cont.evaluate_signal(coeffs, jnp.linspace(0.65, 0.95, 7)[None], c, s))
  np.testing.assert_allclose(late, 0.0, atol=0.02)


@pytest.mark.parametrize("schedule", ["fixed", "equal"])
def test_contraction_shares_match_repeated_contractions(schedule):
  """The closed-form shares against the mechanism itself: blocks of one-hot vectors (block j writes
  e_j) written through first fit + uniform contractions (the sorting runs' N 64, M 64, L 64, tau
  0.75, or tau_n = n / (n + 1)); the mean of the signal over [0, 1] in coordinate j is the share
  block j holds: geometric for the fixed tau, 1 / (n + 1) each for the equal schedule."""
  n, m, l, tau, blocks = 64, 64, 64, 0.75, 7
  c, s = cont.gaussian_basis(n, (0.02, 0.05))
  first = cont.ridge_operator(cont.first_fit_positions(l), c, s, 1.0)
  fixed_op = cont.ridge_operator(cont.contraction_positions(m, l, tau), c, s, 1.0)
  op_for = lambda written: (fixed_op if schedule == "fixed" else cont.ridge_operator(
      cont.contraction_positions(m, l, cont.equal_share_tau(written)), c, s, 1.0))
  one_hot = lambda j: jnp.broadcast_to(jnp.eye(blocks, dtype=jnp.float32)[j], (1, l, blocks))
  sample_t = jnp.arange(1, m + 1, dtype=jnp.float32)[None] / m
  coeffs = cont.ridge_fit(one_hot(0), first)
  grid = jnp.linspace(0.0, 1.0, 4001)[None]
  for j in range(1, blocks):
    coeffs = cont.contract(coeffs, sample_t, one_hot(j), op_for(j), c, s)
    measured = np.asarray(cont.evaluate_signal(coeffs, grid, c, s))[0].mean(0)[: j + 1]
    np.testing.assert_allclose(measured, cont.contraction_shares(j + 1, tau, schedule), atol=5e-3)
  if schedule == "equal":
    np.testing.assert_allclose(cont.contraction_shares(4, 0.3, "equal"), 0.25)
    np.testing.assert_allclose(np.asarray(cont.equal_share_tau(jnp.array([0, 1, 3]))), [0.5, 0.5, 0.75])
  np.testing.assert_allclose(cont.contraction_shares(5, 0.5), [1 / 16, 1 / 16, 1 / 8, 1 / 4, 1 / 2])
  with pytest.raises(ValueError, match="tau"):
    cont.contraction_shares(3, 1.0)


def test_histogram_matches_erf_reference():
  rng = np.random.default_rng(1)
  mu = rng.uniform(-0.1, 1.1, size=(2, 3, 5))
  var = rng.uniform(1e-4, 0.05, size=(2, 3, 5))
  got = np.asarray(cont.density_histogram(jnp.asarray(mu, jnp.float32), jnp.asarray(var, jnp.float32), 16))
  for bi in range(2):
    np.testing.assert_allclose(got[bi], np_histogram(mu[bi], var[bi], 16), atol=2e-5)


def test_quantiles_match_interp_reference_and_uniform_gives_uniform_points():
  rng = np.random.default_rng(2)
  hist = rng.uniform(0, 1, size=(3, 16)) * (rng.uniform(size=(3, 16)) > 0.3)
  got = np.asarray(cont.histogram_quantiles(jnp.asarray(hist, jnp.float32), 40))
  for bi in range(3):
    np.testing.assert_allclose(got[bi], np_quantiles(hist[bi], 40), atol=1e-5)
  assert np.all(np.diff(got, axis=-1) >= 0)
  uniform = np.asarray(cont.histogram_quantiles(jnp.full((1, 128), 1 / 128), 512))[0]
  np.testing.assert_allclose(uniform, np.arange(1, 513) / 512, atol=1e-6)


def test_sticky_samples_concentrate_where_attention_was():
  """Densities around 0.3 (and a few at 0.8): the quantile samples put far more points in
  [0.2, 0.4] than uniform sampling does, and fewer elsewhere."""
  mu = jnp.asarray([[0.3] * 6 + [0.8] * 2], jnp.float32)
  var = jnp.full((1, 8), 0.05 ** 2)
  t = np.asarray(cont.histogram_quantiles(cont.density_histogram(mu, var, 128), 512))[0]
  uniform = np.arange(1, 513) / 512
  inside = lambda p, lo, hi: int(np.sum((p >= lo) & (p <= hi)))
  assert inside(t, 0.2, 0.4) > 2.5 * inside(uniform, 0.2, 0.4)
  assert inside(t, 0.7, 0.9) > inside(uniform, 0.7, 0.9)
  assert inside(t, 0.45, 0.65) < 0.2 * inside(uniform, 0.45, 0.65)
  # Expected count under the reference histogram, bin by bin (about M * mass).
  ref = np_histogram(np.asarray(mu), np.asarray(var), 128)
  expected = 512 * ref[int(0.2 * 128):int(0.4 * 128)].sum()
  assert abs(inside(t, 0.2, 0.4) - expected) <= 3


def np_categorical_points(hist, u):
  """The official draw by inversion (numpy): bin j for each u with cdf[j-1] <= u < cdf[j], as a
  loop over the bins; its left edge j / K; sorted."""
  cdf = np.cumsum(np.asarray(hist, np.float64) / np.sum(hist))
  bins = [min(sum(1 for c in cdf if c <= x), len(hist) - 1) for x in u]
  return np.sort(np.asarray(bins, np.float64) / len(hist))


def test_categorical_draw_matches_inversion_reference_and_follows_the_histogram():
  """The official sticky draw: left edges of bins drawn from the histogram. Against a numpy
  inversion of the same uniforms, bin counts of a large draw within 5 sd of M * mass, no point
  in a bin without mass, and new keys give new draws (same key, same draw)."""
  rng = np.random.default_rng(4)
  hist = rng.uniform(0, 1, size=(3, 16)) * (rng.uniform(size=(3, 16)) > 0.3)
  keys = jax.random.split(jax.random.key(7), 3)
  got = np.asarray(cont.histogram_categorical_draw(keys, jnp.asarray(hist, jnp.float32), 40))
  for bi in range(3):
    u = np.asarray(jax.random.uniform(keys[bi], (40,), jnp.float32), np.float64)
    np.testing.assert_array_equal(got[bi], np_categorical_points(hist[bi], u))
  assert np.all(np.diff(got, axis=-1) >= 0)
  m = 20000
  big = np.asarray(cont.histogram_categorical_draw(keys[:1], jnp.asarray(hist[:1], jnp.float32), m))[0]
  counts = np.bincount(np.round(big * 16).astype(int), minlength=16)
  p = hist[0] / hist[0].sum()
  assert np.all(counts[p == 0] == 0)
  assert np.all(np.abs(counts - m * p) <= 5 * np.sqrt(m * p * (1 - p)) + 1e-9)
  again = cont.histogram_categorical_draw(keys, jnp.asarray(hist, jnp.float32), 40)
  np.testing.assert_array_equal(np.asarray(again), got)
  other = cont.histogram_categorical_draw(jax.random.split(jax.random.key(8), 3),
                                          jnp.asarray(hist, jnp.float32), 40)
  assert np.any(np.asarray(other) != got)


def test_variance_floor_and_finite_gradient_at_the_floor():
  """softplus(w . s) below min_var is clamped (official clamp) and the gradient stays finite."""
  scores = jnp.asarray([[-40.0, 0.0], [3.0, 1.0]])
  w_mu, w_var = jnp.asarray([0.1, 0.2]), jnp.asarray([1.0, 0.0])
  mu, var = cont.density_parameters(scores, w_mu, w_var, 1e-4)
  np.testing.assert_allclose(np.asarray(var), [1e-4, np.log1p(np.exp(3.0))], rtol=1e-6)
  np.testing.assert_allclose(np.asarray(mu), 1 / (1 + np.exp(-np.asarray(scores) @ [0.1, 0.2])),
                             rtol=1e-6)
  c, s = cont.gaussian_basis(8, (0.01, 0.05))
  grad = jax.grad(lambda sc: jnp.sum(cont.basis_expectation(
      *cont.density_parameters(sc, w_mu, w_var, 1e-4), c, s)))(scores)
  assert np.all(np.isfinite(np.asarray(grad)))
