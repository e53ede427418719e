"""longctx.ops.linear_memory against a float64 numpy transcription of Infini-attention Sec. 2.1.

Reference (per example b, head h; papers.md 3(a)):
  sigma(x) = ELU(x) + 1
  A_mem    = sigma(Q) M_{s-1} / (sigma(Q) z_{s-1} + eps)        zero from an empty memory
  linear:  M_s = M_{s-1} + sigma(K)^T V
  delta:   M_s = M_{s-1} + sigma(K)^T (V - sigma(K) M_{s-1} / (sigma(K) z_{s-1} + eps))
  both:    z_s = z_{s-1} + sum_t sigma(K_t)
Shapes: q, k, v [B, L, H, D]; M [B, H, D, D]; z [B, H, D].
"""
import jax.numpy as jnp
import numpy as np
import pytest

from longctx.ops import linear_memory as lm

EPS = 1e-6
B, L, H, D = 2, 5, 2, 4
NUM_BLOCKS = 5


# ----------------------------------------------------------------------------- numpy reference

def np_sigma(x):
  """ELU(x) + 1, written out: x + 1 for x > 0, exp(x) otherwise."""
  return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def np_retrieve_head(sq, m, z, eps):
  """One head: sq [L, D], m [D, D], z [D] -> [L, D], token by token."""
  out = np.zeros((sq.shape[0], m.shape[1]))
  for t in range(sq.shape[0]):
    numerator = sq[t] @ m
    denominator = sq[t] @ z + eps
    out[t] = numerator / denominator
  return out


def np_update_head(sk, v, m, z, rule, eps):
  """One head: sk, v [L, D]; returns (M_s, z_s). Every retrieval uses M_{s-1}, z_{s-1}."""
  if rule == "linear":
    written = v
  else:
    written = v - np_retrieve_head(sk, m, z, eps)
  return m + sk.T @ written, z + sk.sum(axis=0)


def np_memory_over_blocks(q, k, v, rule, eps=EPS):
  """q, k, v [N, B, L, H, D] (N blocks). Returns per-block retrievals [N, B, L, H, D] and the
  memory (M, z) after every block, [N, B, H, D, D] and [N, B, H, D]."""
  q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
  n, b, l, h, d = q.shape
  m = np.zeros((b, h, d, d))
  z = np.zeros((b, h, d))
  reads, ms, zs = np.zeros_like(v), [], []
  for s in range(n):
    new_m, new_z = np.empty_like(m), np.empty_like(z)
    for bi in range(b):
      for hi in range(h):
        sq, sk = np_sigma(q[s, bi, :, hi]), np_sigma(k[s, bi, :, hi])
        reads[s, bi, :, hi] = np_retrieve_head(sq, m[bi, hi], z[bi, hi], eps)
        new_m[bi, hi], new_z[bi, hi] = np_update_head(sk, v[s, bi, :, hi], m[bi, hi], z[bi, hi],
                                                      rule, eps)
    m, z = new_m, new_z
    ms.append(m)
    zs.append(z)
  return reads, np.stack(ms), np.stack(zs)


def jax_memory_over_blocks(q, k, v, rule, eps=EPS):
  """The code under test, same loop structure: retrieve with M_{s-1}, then update."""
  b = q.shape[1]
  m = jnp.zeros((b, H, D, D), jnp.float32)
  z = jnp.zeros((b, H, D), jnp.float32)
  reads, ms, zs = [], [], []
  for s in range(q.shape[0]):
    sq, sk = lm.elu_plus_one(jnp.asarray(q[s])), lm.elu_plus_one(jnp.asarray(k[s]))
    reads.append(lm.compressive_memory_retrieve(sq, m, z, eps))
    m, z = lm.compressive_memory_update(sk, jnp.asarray(v[s]), m, z, rule, eps)
    ms.append(m)
    zs.append(z)
  return np.stack(reads), np.stack(ms), np.stack(zs)


def random_qkv(seed, num_blocks=NUM_BLOCKS):
  rng = np.random.default_rng(seed)
  shape = (num_blocks, B, L, H, D)  # [N, B, L, H, D]
  return tuple(rng.normal(size=shape).astype(np.float32) for _ in range(3))


# ----------------------------------------------------------------------------- tests

def test_elu_plus_one_matches_definition():
  x = np.linspace(-6.0, 6.0, 101).astype(np.float32)
  np.testing.assert_allclose(np.asarray(lm.elu_plus_one(jnp.asarray(x))), np_sigma(x),
                             rtol=1e-6, atol=1e-7)
  assert float(jnp.min(lm.elu_plus_one(jnp.asarray(x)))) > 0.0


@pytest.mark.parametrize("rule", ["linear", "linear_delta"])
def test_memory_matches_numpy_reference_over_blocks(rule):
  q, k, v = random_qkv(seed=0)
  ref_reads, ref_m, ref_z = np_memory_over_blocks(q, k, v, rule)
  reads, ms, zs = jax_memory_over_blocks(q, k, v, rule)
  # Retrievals are normalised (O(1)); M and z grow with the number of tokens written.
  np.testing.assert_allclose(reads, ref_reads, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(ms, ref_m, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(zs, ref_z, atol=1e-5, rtol=1e-5)
  # Non-trivial: every block after the first reads something from the memory.
  assert np.all(np.abs(ref_reads[1:]).max(axis=(1, 2, 3, 4)) > 0.1)


def test_update_rules_differ():
  """The two rules must not collapse to the same code path (guards the test above)."""
  q, k, v = random_qkv(seed=1)
  _, m_lin, _ = jax_memory_over_blocks(q, k, v, "linear")
  _, m_delta, _ = jax_memory_over_blocks(q, k, v, "linear_delta")
  assert np.max(np.abs(m_lin[-1] - m_delta[-1])) > 1e-2


def test_empty_memory_retrieves_exact_zero():
  q, _, _ = random_qkv(seed=2, num_blocks=1)
  sq = lm.elu_plus_one(jnp.asarray(q[0]))
  out = lm.compressive_memory_retrieve(sq, jnp.zeros((B, H, D, D)), jnp.zeros((B, H, D)), EPS)
  assert np.all(np.isfinite(np.asarray(out)))
  np.testing.assert_array_equal(np.asarray(out), 0.0)


def test_unknown_rule_raises():
  q, k, v = random_qkv(seed=3, num_blocks=1)
  with pytest.raises(ValueError, match="update rule"):
    lm.compressive_memory_update(jnp.asarray(k[0]), jnp.asarray(v[0]), jnp.zeros((B, H, D, D)),
                                 jnp.zeros((B, H, D)), "hebbian", EPS)


def _rewrite_existing_binding(rule):
  """Writes a block of keys/values into an empty memory, then writes the same keys again with the
  values the memory returns for them (computed by the numpy reference). Returns (M_1, M_2) as
  float64 numpy: the memory after the first and after the second write."""
  rng = np.random.default_rng(4)
  k = rng.normal(size=(B, L, H, D)).astype(np.float32)  # [B, L, H, D]
  v = rng.normal(size=(B, L, H, D)).astype(np.float32)
  sk = lm.elu_plus_one(jnp.asarray(k))
  m0, z0 = jnp.zeros((B, H, D, D)), jnp.zeros((B, H, D))
  m1, z1 = lm.compressive_memory_update(sk, jnp.asarray(v), m0, z0, rule, EPS)
  # What the memory (M_1, z_1) returns for these keys, per the paper's retrieval equation.
  returned = np.zeros((B, L, H, D))
  sk64 = np_sigma(k.astype(np.float64))
  for bi in range(B):
    for hi in range(H):
      returned[bi, :, hi] = np_retrieve_head(sk64[bi, :, hi], np.asarray(m1, np.float64)[bi, hi],
                                             np.asarray(z1, np.float64)[bi, hi], EPS)
  m2, _ = lm.compressive_memory_update(sk, jnp.asarray(returned, jnp.float32), m1, z1, rule, EPS)
  return np.asarray(m1, np.float64), np.asarray(m2, np.float64)


def test_delta_rule_leaves_existing_binding_unchanged():
  m1, m2 = _rewrite_existing_binding("linear_delta")
  assert np.max(np.abs(m1)) > 0.5  # the first write did store something
  np.testing.assert_allclose(m2, m1, atol=1e-5, rtol=0)


def test_linear_rule_changes_memory_on_existing_binding():
  m1, m2 = _rewrite_existing_binding("linear")
  # Linear attention adds sigma(K)^T V again: the change is as large as the first write.
  assert np.max(np.abs(m2 - m1)) > 0.1 * np.max(np.abs(m1))


def test_single_key_binding_round_trip():
  """One key written into an empty memory is returned almost exactly (|sigma(k)|^2 >> eps)."""
  rng = np.random.default_rng(5)
  k = rng.normal(size=(1, 1, 1, D)).astype(np.float32)  # [B=1, L=1, H=1, D]
  v = rng.normal(size=(1, 1, 1, D)).astype(np.float32)
  sk = lm.elu_plus_one(jnp.asarray(k))
  m, z = lm.compressive_memory_update(sk, jnp.asarray(v), jnp.zeros((1, 1, D, D)),
                                      jnp.zeros((1, 1, D)), "linear", EPS)
  np.testing.assert_allclose(np.asarray(lm.compressive_memory_retrieve(sk, m, z, EPS)), v,
                             atol=1e-5)


@pytest.mark.parametrize("rule,expected", [("linear", [1.0, 1.0, 1.0, 1.0]),
                                           ("linear_delta", [1.0, 0.5, 0.5, 0.5])])
def test_repeated_key_readout_under_the_additive_normaliser(rule, expected):
  """The same (k, v) written once per block, n times; k a one-hot key so sigma(k) . sigma(k) is
  known. Closed form of the paper's equations (z grows by sigma(k) every write, the delta rule
  subtracts the normalised readout): linear M_n = n v, z_n = n -> readout v; delta M_1 = v and
  M_{n+1} = M_n + v - M_n / n -> M_n = n v / 2 for n >= 2 -> readout v / 2. So under the delta rule
  M keeps growing like z (why experiments/infini-attention measured M / z constant with length)."""
  k = np.full((1, 1, 1, D), -30.0, np.float32)  # ELU+1(-30) ~ 1e-13: a one-hot sigma(k)
  k[..., 0] = 0.0                               # ELU+1(0) = 1
  v = np.linspace(-1, 1, D, dtype=np.float32).reshape(1, 1, 1, D)
  sk = lm.elu_plus_one(jnp.asarray(k))
  m, z = jnp.zeros((1, 1, D, D)), jnp.zeros((1, 1, D))
  readouts, norms = [], []
  for _ in range(4):
    m, z = lm.compressive_memory_update(sk, jnp.asarray(v), m, z, rule, EPS)
    readouts.append(np.asarray(lm.compressive_memory_retrieve(sk, m, z, EPS))[0, 0, 0])
    norms.append(float(np.linalg.norm(np.asarray(m))))
  for got, factor in zip(readouts, expected):
    np.testing.assert_allclose(got, factor * v[0, 0, 0], atol=1e-4)
  if rule == "linear_delta":  # M = n v / 2: still growing linearly after the first rewrite
    np.testing.assert_allclose(norms[3] / norms[1], 2.0, rtol=1e-4)


# ------------------------------------------------------------- write weights (data.filler_weight_max)

@pytest.mark.parametrize("rule", ["linear", "linear_delta"])
def test_integer_write_weights_equal_repeated_tokens(rule):
  """Token t written with weight w_t (an integer) = the block with token t repeated w_t times: in
  one block every retrieval reads M_{s-1}, so under both rules a copy adds exactly what its
  original adds. The reference is the unweighted update itself on the repeated block."""
  q, k, v = random_qkv(seed=3, num_blocks=2)
  weights = np.array([[1, 3, 2, 1, 4], [2, 1, 1, 5, 1]])           # [B, L]
  m, z = (jnp.asarray(a) for a in jax_memory_over_blocks(q[:1], k[:1], v[:1], rule)[1:])
  m, z = m[0], z[0]                                                # a non-empty M_{s-1}
  sk = lm.elu_plus_one(jnp.asarray(k[1]))
  got_m, got_z = lm.compressive_memory_update(sk, jnp.asarray(v[1]), m, z, rule, EPS,
                                              write_weights=jnp.asarray(weights, jnp.float32))
  for bi in range(B):
    rep = np.repeat(np.arange(L), weights[bi])                     # token t, w_t times
    ref_m, ref_z = lm.compressive_memory_update(sk[bi:bi + 1, rep], jnp.asarray(v[1][bi:bi + 1, rep]),
                                                m[bi:bi + 1], z[bi:bi + 1], rule, EPS)
    np.testing.assert_allclose(np.asarray(got_m[bi]), np.asarray(ref_m[0]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got_z[bi]), np.asarray(ref_z[0]), rtol=1e-5, atol=1e-5)
  # Weights of one are no weights, bit for bit; other weights change the memory.
  ones_m, ones_z = lm.compressive_memory_update(sk, jnp.asarray(v[1]), m, z, rule, EPS,
                                                write_weights=jnp.ones((B, L)))
  plain_m, plain_z = lm.compressive_memory_update(sk, jnp.asarray(v[1]), m, z, rule, EPS)
  np.testing.assert_array_equal(np.asarray(ones_m), np.asarray(plain_m))
  np.testing.assert_array_equal(np.asarray(ones_z), np.asarray(plain_z))
  assert np.max(np.abs(np.asarray(got_z - plain_z))) > 0.1


def test_fractional_write_weights_match_the_numpy_formula():
  """w_t real: M_s = M + sigma(K)^T diag(w) (V - delta read at M_{s-1}), z_s = z + sum w sigma(K)."""
  q, k, v = random_qkv(seed=4, num_blocks=1)
  w = np.random.default_rng(4).uniform(0.5, 300.0, size=(B, L))
  sk = np_sigma(np.asarray(k[0], np.float64))
  m0 = np.random.default_rng(5).normal(size=(B, H, D, D))
  z0 = np.random.default_rng(6).uniform(1.0, 3.0, size=(B, H, D))
  got_m, got_z = lm.compressive_memory_update(
      jnp.asarray(sk, jnp.float32), jnp.asarray(v[0]), jnp.asarray(m0, jnp.float32),
      jnp.asarray(z0, jnp.float32), "linear_delta", EPS, write_weights=jnp.asarray(w, jnp.float32))
  for bi in range(B):
    for hi in range(H):
      s = sk[bi, :, hi]
      written = v[0][bi, :, hi] - np_retrieve_head(s, m0[bi, hi], z0[bi, hi], EPS)
      np.testing.assert_allclose(np.asarray(got_m[bi, hi]),
                                 m0[bi, hi] + (w[bi][:, None] * s).T @ written, rtol=2e-5, atol=1e-3)
      np.testing.assert_allclose(np.asarray(got_z[bi, hi]), z0[bi, hi] + w[bi] @ s, rtol=2e-5)


# ----------------------------------------------------------------------------- compensated sums

def _stream_memory(rule, num_blocks, compensated):
  """Writes num_blocks blocks of a periodic stream (the passkey filler's shape) through a jitted
  lax.scan, the way the decoder does; returns M [D, D] of head 0, example 0."""
  import jax
  rng = np.random.default_rng(3)
  period_k = rng.normal(size=(37, D)).astype(np.float32)
  period_v = rng.normal(size=(37, D)).astype(np.float32)

  def block(s):
    idx = (s * L + jnp.arange(L)) % 37
    return (lm.elu_plus_one(jnp.asarray(period_k)[idx])[None, :, None],
            jnp.asarray(period_v)[idx][None, :, None])

  def step(carry, s):
    m, z, m_err, z_err = carry
    sk, v = block(s)
    dm, dz = lm.compressive_memory_increment(sk, v, m, z, rule, EPS)
    if compensated:
      m, m_err = lm.compensated_add(m, m_err, dm)
      z, z_err = lm.compensated_add(z, z_err, dz)
    else:
      m, z = m + dm, z + dz
    return (m, z, m_err, z_err), None

  zeros = (jnp.zeros((1, 1, D, D)), jnp.zeros((1, 1, D)))
  carry = (*zeros, *zeros)
  (m, *_), _ = jax.jit(lambda c: jax.lax.scan(step, c, jnp.arange(num_blocks)))(carry)
  ref_m, ref_z = np.zeros((D, D)), np.zeros(D)
  sig_k = np_sigma(period_k.astype(np.float64))
  for s in range(num_blocks):
    idx = (s * L + np.arange(L)) % 37
    ref_m, ref_z = np_update_head(sig_k[idx], period_v[idx].astype(np.float64), ref_m, ref_z,
                                  rule, EPS)
  return np.asarray(m[0, 0], np.float64), ref_m


@pytest.mark.parametrize("rule", lm.UPDATE_RULES)
def test_compensated_sum_keeps_many_blocks_at_float32_precision(rule):
  """Over 8,000 blocks the plain float32 sum drifts from the float64 equation by far more than
  one rounding of the total; the Kahan sum stays within a few. Both are checked, so the test
  fails if the compiler folds the compensation away ((t - s) - y == 0 algebraically)."""
  num_blocks = 8_000
  plain, ref = _stream_memory(rule, num_blocks, compensated=False)
  kahan, _ = _stream_memory(rule, num_blocks, compensated=True)
  scale = np.abs(ref).max()
  plain_err = np.abs(plain - ref).max() / scale
  kahan_err = np.abs(kahan - ref).max() / scale
  assert kahan_err < 5e-7, kahan_err
  assert plain_err > 10 * kahan_err, (plain_err, kahan_err)


def test_compensated_add_has_the_plain_sums_gradient():
  import jax
  rng = np.random.default_rng(4)
  incs = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)

  def total(incs, compensated):
    s, e = jnp.zeros(3), jnp.zeros(3)
    for inc in incs:
      if compensated:
        s, e = lm.compensated_add(s, e, inc)
      else:
        s = s + inc
    return jnp.sum(jnp.sin(s))

  g_plain = jax.grad(total)(incs, False)
  g_kahan = jax.grad(total)(incs, True)
  np.testing.assert_allclose(np.asarray(g_kahan), np.asarray(g_plain), rtol=1e-6, atol=1e-7)
