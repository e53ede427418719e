"""InfinityFormerAttention (longctx.layers.infinity_former) against a float64 numpy reference that
keeps the short-term memory as a Python list of blocks and the long-term memory as coefficients
refitted with an explicit-inverse ridge regression; plus the protocol invariants through the
decoder and the scan driver (scan == per-block loop, one call == several calls, reset, no leak
between examples, gradients through the memory written in earlier blocks)."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.layers.infinity_former import InfinityFormerAttention
from longctx.models import scan
from longctx.models.decoder import Decoder

D_MODEL, H, L, B = 16, 2, 4, 2
D = D_MODEL // H
NUM_BLOCKS = 6
T = L * NUM_BLOCKS
THETA = 10000.0
LTM = dict(num_basis=16, basis_widths=(0.08, 0.2), ridge_lambda=0.5, tau=0.6, num_samples=12,
           num_bins=8, min_var=1e-4)
POSITIONS = np.stack([np.arange(T) + 5, np.arange(T) + 17]).astype(np.int32)


# ----------------------------------------------------------------------------- numpy reference

def np_gauss(x, mean, var):
  return np.exp(-0.5 * (x - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)


def np_rope(x, positions):
  """Rotate-half RoPE on x [L, H, D] at positions [L]."""
  half = x.shape[-1] // 2
  out = np.empty_like(x)
  for i in range(half):
    angle = positions.astype(np.float64)[:, None] * THETA ** (-i / half)
    a, b = x[..., i], x[..., i + half]
    out[..., i], out[..., i + half] = a * np.cos(angle) - b * np.sin(angle), b * np.cos(angle) + a * np.sin(angle)
  return out


def np_basis():
  widths = LTM["basis_widths"]
  per = LTM["num_basis"] // len(widths)
  return np.repeat(np.linspace(0, 1, per), len(widths)), np.tile(np.asarray(widths), per)


def np_ridge(positions, x):
  """Coefficients [N, E] of x [P, E] at positions [P]: (F F^T + lambda I)^-1 F X."""
  c, s = np_basis()
  f = np_gauss(positions[None], c[:, None], s[:, None] ** 2)
  return np.linalg.inv(f @ f.T + LTM["ridge_lambda"] * np.eye(len(c))) @ f @ x


def np_mass(mu, var, k):
  """Mass of the densities N(mu, var) in each of k bins of [0, 1], summed."""
  edges = np.linspace(0, 1, k + 1)
  cdf = lambda x, a, v: 0.5 * (1 + math.erf((x - a) / math.sqrt(2 * v)))
  return np.array([sum(cdf(edges[j + 1], a, v) - cdf(edges[j], a, v) for a, v in zip(mu, var))
                   for j in range(k)])


def np_sticky_points(mu, var, k, m):
  """Quantiles i/m of the histogram (k bins of [0, 1]) of the densities N(mu, var)."""
  mass, edges = np_mass(mu, var, k), np.linspace(0, 1, k + 1)
  return np.interp(np.arange(1, m + 1) / m, np.concatenate([[0], np.cumsum(mass) / mass.sum()]), edges)


def np_drawn_points(mu, var, k, u):
  """The official categorical draw: for each uniform u the bin j with cdf[j-1] <= u < cdf[j]
  (a loop over the bins), its left edge j / k, sorted."""
  mass = np_mass(mu, var, k)
  cdf = np.cumsum(mass) / mass.sum()
  return np.sort([min(sum(1 for c in cdf if c <= x), k - 1) / k for x in u])


def np_draw_uniforms(example, num_blocks, m, layer_index=0):
  """The uniforms of the categorical draw of each block: the layer's key chain for `example`
  (fold_in(key(0x57C4), layer), then the batch slot folded in; every block splits [next, draw])."""
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0x57C4), layer_index), example)
  out = []
  for _ in range(num_blocks):
    key, draw = jax.random.split(key)
    out.append(np.asarray(jax.random.uniform(draw, (m,), jnp.float32), np.float64))
  return out


def np_params(state):
  g = lambda v: np.asarray(v[...], np.float64)
  mask = ((g(state["write_mask"]["kernel"]), g(state["write_mask"]["bias"]))
          if "write_mask" in state else None)
  return dict(mask=mask, wq=g(state["stm"]["query"]["kernel"]), wk=g(state["stm"]["key"]["kernel"]),
              wv=g(state["stm"]["value"]["kernel"]), wo=g(state["stm"]["out"]["kernel"]),
              lk=g(state["ltm_key"]["kernel"]), lv=g(state["ltm_value"]["kernel"]),
              lo=g(state["ltm_out"]["kernel"]), w_mu=g(state["ltm_mu"]), w_var=g(state["ltm_var"]))


def np_layer(x, p, positions, stm_blocks, sticky, ltm_on=True, tau_schedule="fixed", draw=False):
  """x [B, T, d_model] -> y [B, T, d_model], final coefficients per example (None if empty).
  tau_schedule 'equal': the contraction into a memory of n blocks uses tau = n / (n + 1).
  draw: sticky points by the categorical draw (np_drawn_points) instead of the quantiles."""
  c, s = np_basis()
  m_samples, tau = LTM["num_samples"], LTM["tau"]
  ys, finals = [], []
  for bi in range(x.shape[0]):
    cache, coeffs, y_rows, written = [], None, [], 0   # cache: list of (k_rot, v, x) per block
    uniforms = np_draw_uniforms(bi, x.shape[1] // L, m_samples) if draw else None
    for blk in range(x.shape[1] // L):
      xs, pos = x[bi, blk * L:(blk + 1) * L], positions[bi, blk * L:(blk + 1) * L]
      q, k, v = ((xs @ p[w]).reshape(L, H, D) for w in ("wq", "wk", "wv"))
      qr, kr = np_rope(q, pos), np_rope(k, pos)
      keys = np.concatenate([e[0] for e in cache] + [kr])
      values = np.concatenate([e[1] for e in cache] + [v])
      n_cache = len(cache) * L
      att = np.zeros((L, H, D))
      ltm = np.zeros((L, H, D))
      mus, variances = [], []
      for hi in range(H):
        for i in range(L):
          logits = keys[:n_cache + i + 1, hi] @ qr[i, hi] / np.sqrt(D)
          w = np.exp(logits - logits.max())
          att[i, hi] = (w / w.sum()) @ values[:n_cache + i + 1, hi]
          if coeffs is not None:
            kl = (coeffs @ p["lk"]).reshape(-1, H, D)[:, hi]
            vl = (coeffs @ p["lv"]).reshape(-1, H, D)[:, hi]
            scores = kl @ q[i, hi] / np.sqrt(D)
            mu = 1 / (1 + np.exp(-scores @ p["w_mu"]))
            var = max(np.log1p(np.exp(scores @ p["w_var"])), LTM["min_var"])
            ltm[i, hi] = np_gauss(mu, c, var + s ** 2) @ vl
            mus.append(mu)
            variances.append(var)
      y = att.reshape(L, D_MODEL) @ p["wo"]
      if coeffs is not None and ltm_on:
        y = y + ltm.reshape(L, D_MODEL) @ p["lo"]
      y_rows.append(y)
      if len(cache) == stm_blocks:    # the oldest block leaves the STM for the LTM
        evicted = cache.pop(0)[2]
        if p["mask"] is not None:     # gate sigmoid(Conv1d k=3, zero 'same' padding) [L, d]
          kernel, bias = p["mask"]
          padded = np.concatenate([np.zeros((1, D_MODEL)), evicted, np.zeros((1, D_MODEL))])
          logits = sum(padded[j:j + L] @ kernel[j] for j in range(3)) + bias
          evicted = evicted / (1 + np.exp(-logits))
        if coeffs is None:
          coeffs = np_ridge((np.arange(L) + 0.5) / L, evicted)
        else:
          if tau_schedule == "equal":
            tau = written / (written + 1)
          if sticky and draw:
            t = np_drawn_points(mus, variances, LTM["num_bins"], uniforms[blk])
          elif sticky:
            t = np_sticky_points(mus, variances, LTM["num_bins"], m_samples)
          else:
            t = np.arange(1, m_samples + 1) / m_samples
          old = np_gauss(t[:, None], c[None], s[None] ** 2) @ coeffs
          where = np.concatenate([tau * np.arange(1, m_samples + 1) / m_samples,
                                  tau + (1 - tau) * np.arange(1, L + 1) / L])
          coeffs = np_ridge(where, np.concatenate([old, evicted]))
        written += 1
      cache.append((kr, v, xs))
    ys.append(np.concatenate(y_rows))
    finals.append(coeffs)
  return np.stack(ys), finals


# ----------------------------------------------------------------------------- code under test

def make_layer(stm_blocks=1, sticky=False, stop_grad=True, seed=0, write_mask=False,
               tau_schedule="fixed", sticky_draw="quantile"):
  layer = InfinityFormerAttention(D_MODEL, H, block_len=L, stm_blocks=stm_blocks, sticky=sticky,
                                  stop_grad=stop_grad, dtype=jnp.float32, rope_theta=THETA,
                                  rngs=nnx.Rngs(seed), write_mask=write_mask,
                                  tau_schedule=tau_schedule, sticky_draw=sticky_draw, **LTM)
  # Larger mu/sigma weights than the init, so the densities differ across queries and heads.
  layer.ltm_mu[...] = layer.ltm_mu[...] * 4.0
  layer.ltm_var[...] = layer.ltm_var[...] * 4.0
  return nnx.split(layer)


@functools.partial(jax.jit, static_argnums=0)
def run_layer(graphdef, state, x, positions, memory, reset):
  """The layer over x [B, T, d_model] block by block with lax.scan; reset before the first block."""
  b, t, d = x.shape
  n = t // L
  xs = (jnp.swapaxes(x.reshape(b, n, L, d), 0, 1), jnp.swapaxes(positions.reshape(b, n, L), 0, 1),
        jnp.zeros((n, b), bool).at[0].set(reset))

  def body(mem, inp):
    y, mem = nnx.merge(graphdef, state)(inp[0], mem, positions=inp[1], reset=inp[2])
    return mem, y
  memory, ys = jax.lax.scan(body, memory, xs)
  return jnp.swapaxes(ys, 0, 1).reshape(b, t, d), memory


def fresh(graphdef, state, b=B):
  return nnx.merge(graphdef, state).init_memory(b)


def random_input(seed, b=B, t=T):
  return np.random.default_rng(seed).normal(size=(b, t, D_MODEL)).astype(np.float32)


def run_fresh(graphdef, state, x):
  return run_layer(graphdef, state, jnp.asarray(x), jnp.asarray(POSITIONS[:x.shape[0]]),
                   fresh(graphdef, state, x.shape[0]), jnp.ones((x.shape[0],), bool))


def signal_of(coeffs, grid=np.linspace(0, 1, 41)):
  c, s = np_basis()
  return np_gauss(grid[:, None], c[None], s[None] ** 2) @ coeffs


# ----------------------------------------------------------------------------- layer tests

@pytest.mark.parametrize("stm_blocks,sticky,write_mask,tau_schedule,draw", [
    (1, False, False, "fixed", False), (1, True, False, "fixed", False),
    (2, True, False, "fixed", False), (1, True, True, "fixed", False),
    (1, False, False, "equal", False), (2, True, False, "equal", False),
    (1, True, False, "fixed", True), (2, True, False, "equal", True)])
def test_layer_matches_numpy_reference(stm_blocks, sticky, write_mask, tau_schedule, draw):
  graphdef, state = make_layer(stm_blocks, sticky, write_mask=write_mask, tau_schedule=tau_schedule,
                               sticky_draw="categorical" if draw else "quantile")
  if write_mask:  # a non-zero bias too, so the reference's bias term is exercised
    state["write_mask"]["bias"][...] = jnp.linspace(-1.0, 1.0, D_MODEL)
  x = random_input(1)
  y, mem = run_fresh(graphdef, state, x)
  p = np_params(state)
  y_ref, coeffs_ref = np_layer(np.asarray(x, np.float64), p, POSITIONS, stm_blocks, sticky,
                               tau_schedule=tau_schedule, draw=draw)
  np.testing.assert_allclose(np.asarray(y), y_ref, atol=2e-4, rtol=1e-4)
  np.testing.assert_array_equal(np.asarray(mem["ltm_blocks"]), NUM_BLOCKS - stm_blocks)
  for bi in range(B):  # the memory signal, compared as a function of t (coefficients are ill-posed)
    np.testing.assert_allclose(signal_of(np.asarray(mem["ltm_coeffs"][bi], np.float64)),
                               signal_of(coeffs_ref[bi]), atol=2e-3)
  assert bool(np.all(np.asarray(mem["ltm_filled"])))
  # Non-vacuous: without the LTM read the reference differs once the LTM holds something.
  y_stm_only, _ = np_layer(np.asarray(x, np.float64), p, POSITIONS, stm_blocks, sticky, ltm_on=False)
  first_read = (stm_blocks + 1) * L
  np.testing.assert_allclose(y_stm_only[:, :first_read], y_ref[:, :first_read], atol=1e-12)
  assert np.max(np.abs(y_stm_only[:, first_read:] - y_ref[:, first_read:])) > 1e-2


def test_equal_tau_schedule_changes_what_is_kept():
  """Same weights, fixed tau (0.6) vs tau_n = n / (n + 1): different memories; a bad name fails."""
  x = random_input(2)
  _, mem_f = run_fresh(*make_layer(tau_schedule="fixed"), x)
  _, mem_e = run_fresh(*make_layer(tau_schedule="equal"), x)
  diff = signal_of(np.asarray(mem_f["ltm_coeffs"][0], np.float64)) - signal_of(
      np.asarray(mem_e["ltm_coeffs"][0], np.float64))
  assert np.max(np.abs(diff)) > 1e-2
  with pytest.raises(ValueError, match="tau_schedule"):
    make_layer(tau_schedule="harmonic")


def test_sticky_changes_what_is_kept():
  """Same weights, sticky vs uniform sample points: different memories after a contraction."""
  x = random_input(2)
  _, mem_u = run_fresh(*make_layer(sticky=False), x)
  _, mem_s = run_fresh(*make_layer(sticky=True), x)
  diff = signal_of(np.asarray(mem_u["ltm_coeffs"][0], np.float64)) - signal_of(
      np.asarray(mem_s["ltm_coeffs"][0], np.float64))
  assert np.max(np.abs(diff)) > 1e-2


def test_categorical_draw_key_is_carried_through_resets_and_calls():
  """The official random sticky draw: its key survives a reset, so the next document (a new
  training step) draws new points and keeps a different memory of the same input; a fresh
  memory draws the same points again (a deterministic evaluation); one call over the sequence
  equals two calls with the memory carried; the draw keeps something else than the quantiles."""
  graphdef, state = make_layer(sticky=True, sticky_draw="categorical")
  x, positions = jnp.asarray(random_input(8)), jnp.asarray(POSITIONS)
  y1, mem1 = run_fresh(graphdef, state, x)
  y1_again, _ = run_fresh(graphdef, state, x)
  np.testing.assert_array_equal(np.asarray(y1), np.asarray(y1_again))
  y2, mem2 = run_layer(graphdef, state, x, positions, mem1, jnp.ones((B,), bool))
  assert np.any(np.asarray(mem1["ltm_draw_key"]) != np.asarray(mem2["ltm_draw_key"]))
  assert np.max(np.abs(np.asarray(y1 - y2))) > 1e-4
  half = T // 2
  ya, mem_a = run_layer(graphdef, state, x[:, :half], positions[:, :half],
                        fresh(graphdef, state), jnp.ones((B,), bool))
  yb, mem_b = run_layer(graphdef, state, x[:, half:], positions[:, half:], mem_a,
                        jnp.zeros((B,), bool))
  np.testing.assert_allclose(np.asarray(jnp.concatenate([ya, yb], axis=1)), np.asarray(y1),
                             atol=1e-5)
  for a, b in zip(jax.tree.leaves(mem_b), jax.tree.leaves(mem1)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
  _, mem_q = run_fresh(*make_layer(sticky=True), x)
  diff = signal_of(np.asarray(mem_q["ltm_coeffs"][0], np.float64)) - signal_of(
      np.asarray(mem1["ltm_coeffs"][0], np.float64))
  assert np.max(np.abs(diff)) > 1e-2
  with pytest.raises(ValueError, match="sticky_draw"):
    make_layer(sticky=True, sticky_draw="gumbel")


@pytest.mark.parametrize("tau_schedule", ["fixed", "equal"])
def test_reset_clears_memory(tau_schedule):
  graphdef, state = make_layer(sticky=True, tau_schedule=tau_schedule)
  x, positions = jnp.asarray(random_input(3)), jnp.asarray(POSITIONS)
  _, carried = run_fresh(graphdef, state, random_input(4))
  run = lambda mem, reset: run_layer(graphdef, state, x, positions, mem, jnp.asarray(reset))
  y_reset, mem_reset = run(carried, [True, False])
  y_fresh, mem_fresh = run(fresh(graphdef, state), [False, False])
  y_kept, mem_kept = run(carried, [False, False])
  np.testing.assert_array_equal(np.asarray(y_reset[0]), np.asarray(y_fresh[0]))
  np.testing.assert_array_equal(np.asarray(y_reset[1]), np.asarray(y_kept[1]))
  for a, f, k in zip(jax.tree.leaves(mem_reset), jax.tree.leaves(mem_fresh), jax.tree.leaves(mem_kept)):
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(f[0]))
    np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(k[1]))
  assert np.max(np.abs(np.asarray(y_fresh[0] - y_kept[0]))) > 1e-3


def test_examples_in_a_batch_do_not_leak():
  graphdef, state = make_layer(sticky=True)
  x = random_input(5)
  x2 = x.copy()
  x2[1] = random_input(6, b=1)[0]
  (y, mem), (y2, mem2) = run_fresh(graphdef, state, x), run_fresh(graphdef, state, x2)
  np.testing.assert_array_equal(np.asarray(y[0]), np.asarray(y2[0]))
  for a, a2 in zip(jax.tree.leaves(mem), jax.tree.leaves(mem2)):
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(a2[0]))
  assert np.max(np.abs(np.asarray(y[1] - y2[1]))) > 1e-3


def test_memory_stays_finite_and_float32_over_many_blocks():
  """300 blocks (~300 contractions) of random input: finite outputs and memory, float32."""
  graphdef, state = make_layer(sticky=True)
  x = random_input(7, b=1, t=300 * L)
  positions = jnp.arange(300 * L, dtype=jnp.int32)[None]
  y, mem = run_layer(graphdef, state, jnp.asarray(x), positions, fresh(graphdef, state, 1),
                     jnp.ones((1,), bool))
  assert mem["ltm_coeffs"].dtype == jnp.float32 and mem["stm_inputs"].dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(y))) and np.all(np.isfinite(np.asarray(mem["ltm_coeffs"])))


# ----------------------------------------------------------------------------- decoder + scan driver

def decoder(tiny_cfg, **ltm):
  cfg = tiny_cfg(attention="infinity_former", num_layers=2, block_len=L,
                 infinity_former=dict(LTM, **ltm))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  return cfg, model, graphdef, params


def token_batch(seed, vocab, t=T, reset=(True, True)):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, vocab, size=(B, t + 1)).astype(np.int32)
  return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
          "weights": np.ones((B, t), np.float32), "positions": POSITIONS[:, :t].copy(),
          "reset": np.asarray(reset)}


def _assert_trees_close(a, b, atol):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x, np.float64),
                                                       np.asarray(y, np.float64), atol=atol), a, b)


def test_scan_equals_python_loop_and_one_call_equals_several(tiny_cfg):
  """run_blocks over 6 blocks == a per-block Python loop of decoder calls == run_blocks over 3
  chunks of 2 blocks with the memory carried between the calls (reset only before the first)."""
  cfg, model, graphdef, params = decoder(tiny_cfg, sticky=True)
  cfg.remat_policy = "nothing_saveable"  # jax.checkpoint must not change the result
  batch = token_batch(1, cfg.vocab_size)
  run = jax.jit(lambda p, m, b: scan.run_blocks(graphdef, p, m, b, cfg))
  memory, outs = run(params, model.init_memory(B), batch)

  step = jax.jit(lambda p, m, tok, pos, r: nnx.merge(graphdef, p)(tok, m, positions=pos, reset=r))
  loop_memory, logits = model.init_memory(B), []
  for s in range(NUM_BLOCKS):
    sl = slice(s * L, (s + 1) * L)
    out, loop_memory = step(params, loop_memory, batch["inputs"][:, sl], batch["positions"][:, sl],
                            np.full((B,), s == 0))
    logits.append(np.asarray(out, np.float64))
  logits = np.concatenate(logits, 1)
  logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
  nll = logz - np.take_along_axis(logits, batch["targets"][..., None], -1)[..., 0]
  np.testing.assert_allclose(np.asarray(outs["loss"]), nll, atol=1e-4, rtol=1e-5)
  _assert_trees_close(memory, loop_memory, atol=1e-5)

  chunk_memory, losses = model.init_memory(B), []
  for c in range(3):
    sl = slice(c * 2 * L, (c + 1) * 2 * L)
    piece = {k: batch[k][:, sl] for k in ("inputs", "targets", "weights", "positions")}
    piece["reset"] = np.full((B,), c == 0)
    chunk_memory, o = run(params, chunk_memory, piece)
    losses.append(np.asarray(o["loss"]))
  np.testing.assert_allclose(np.concatenate(losses, 1), np.asarray(outs["loss"]), atol=1e-5)
  _assert_trees_close(chunk_memory, memory, atol=1e-5)


def _early_embedding_grad(tiny_cfg, stop_grad, write_mask=False, wrt="embedding"):
  """d(loss of block 3) / d(embeddings of the tokens of block 0), 1 layer, STM of 1 block: block 0
  leaves the STM after block 1, so only the LTM links it to block 3 (the STM is stop-gradient).
  wrt="write_mask": d(same loss) / d(the write gate's kernel) instead."""
  cfg = tiny_cfg(attention="infinity_former", num_layers=1, block_len=L,
                 infinity_former=dict(LTM, stop_grad=stop_grad, sticky=True, write_mask=write_mask))
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  rng = np.random.default_rng(3)
  first = 8  # block 0 alone uses tokens 0..7
  t = 4 * L
  batch = token_batch(4, cfg.vocab_size, t=t)
  batch["inputs"] = rng.integers(first, cfg.vocab_size, size=(B, t)).astype(np.int32)
  batch["inputs"][:, :L] = rng.integers(0, first, size=(B, L))
  batch["weights"] = np.zeros((B, t), np.float32)
  batch["weights"][:, 3 * L:] = 1.0
  loss = lambda p: scan.mean_loss(p, graphdef, model.init_memory(B), batch, cfg)[0]
  grads = jax.jit(jax.grad(loss))(params)
  if wrt == "write_mask":
    return np.asarray(grads["layers"][0]["attention"]["write_mask"]["kernel"]), loss, params
  return np.asarray(grads["embed"]["embedding"])[:first], loss, params


def test_gradients_reach_earlier_blocks_through_the_long_term_memory(tiny_cfg):
  g_cut, _, _ = _early_embedding_grad(tiny_cfg, stop_grad=True)
  np.testing.assert_array_equal(g_cut, 0.0)
  g, loss, params = _early_embedding_grad(tiny_cfg, stop_grad=False)
  assert np.max(np.abs(g)) > 1e-5
  # The gradient is the derivative: central differences along a random direction of those rows.
  direction = np.random.default_rng(5).normal(size=g.shape).astype(np.float32)
  loss = jax.jit(loss)

  def shifted(eps):
    emb = np.asarray(params["embed"]["embedding"]).copy()
    emb[:g.shape[0]] += eps * direction
    return float(loss(dict(params, embed={"embedding": jnp.asarray(emb)})))
  eps = 1e-2
  fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
  np.testing.assert_allclose(np.sum(g * direction), fd, rtol=5e-2, atol=1e-5)


def test_write_mask_gate_learns_with_and_without_stop_grad(tiny_cfg):
  """The official `mask` gate on the written vectors: with stop_grad (old memory and stored inputs
  detached, as the official B_past) the gate still gets a gradient through the next read, and
  block 0's embeddings still get none; without stop_grad the gate's gradient is the derivative."""
  g_cut, _, _ = _early_embedding_grad(tiny_cfg, stop_grad=True, write_mask=True)
  np.testing.assert_array_equal(g_cut, 0.0)
  g_gate, _, _ = _early_embedding_grad(tiny_cfg, stop_grad=True, write_mask=True, wrt="write_mask")
  assert np.max(np.abs(g_gate)) > 1e-6
  g, loss, params = _early_embedding_grad(tiny_cfg, stop_grad=False, write_mask=True,
                                          wrt="write_mask")
  direction = np.random.default_rng(6).normal(size=g.shape).astype(np.float32)
  loss = jax.jit(loss)

  def shifted(eps):
    layer = params["layers"][0]
    kernel = np.asarray(layer["attention"]["write_mask"]["kernel"]) + eps * direction
    attention = dict(layer["attention"], write_mask=dict(layer["attention"]["write_mask"],
                                                         kernel=jnp.asarray(kernel)))
    return float(loss(dict(params, layers={0: dict(layer, attention=attention)})))
  eps = 1e-2
  fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
  np.testing.assert_allclose(np.sum(g * direction), fd, rtol=5e-2, atol=1e-6)


def test_kl_to_prior_matches_quadrature():
  """The optional KL regulariser (official code, not the paper) against KL computed by numerical
  integration of p log(p / q) for N(mu, var) and N(mu0, sigma0^2)."""
  from longctx.ops.continuous_attention import gaussian_kl_to_prior
  t = np.linspace(-4.0, 5.0, 400001)
  log_gauss = lambda x, m, v: -0.5 * (x - m) ** 2 / v - 0.5 * np.log(2 * np.pi * v)
  for mu, var, mu0 in ((0.3, 0.01, 0.5), (0.7, 0.0004, 0.7), (0.1, 0.2, 0.9)):
    log_p, log_q = log_gauss(t, mu, var), log_gauss(t, mu0, 0.05 ** 2)  # no underflow of q
    kl_num = np.trapezoid(np.exp(log_p) * (log_p - log_q), t)
    ours = float(gaussian_kl_to_prior(jnp.float32(mu), jnp.float32(var), 0.05, mu0))
    np.testing.assert_allclose(ours, kl_num, rtol=1e-3)
    # Without mu0, the code's default: the mean term is dropped.
    no_mean = float(gaussian_kl_to_prior(jnp.float32(mu), jnp.float32(var), 0.05))
    np.testing.assert_allclose(no_mean, kl_num - 0.5 * (mu - mu0) ** 2 / 0.05 ** 2, rtol=1e-3,
                               atol=1e-4)


def test_kl_option_adds_the_weighted_mean_kl_of_filled_reads_to_the_loss(tiny_cfg):
  """kl_weight > 0: the training loss grows by kl_weight x the mean KL of the densities of blocks
  that read a filled LTM (recomputed here from the layer's own read); kl_weight 0 returns no aux."""
  base = dict(LTM, sticky=False)
  cfg0 = tiny_cfg(attention="infinity_former", num_layers=1, block_len=L, infinity_former=base)
  cfg1 = tiny_cfg(attention="infinity_former", num_layers=1, block_len=L,
                  infinity_former=dict(base, kl_weight=0.5))
  m0, m1 = Decoder(cfg0, nnx.Rngs(0)), Decoder(cfg1, nnx.Rngs(0))
  g0, p0 = nnx.split(m0, nnx.Param)
  g1, p1 = nnx.split(m1, nnx.Param)
  batch = token_batch(2, cfg0.vocab_size)
  loss0, (_, outs0) = scan.mean_loss(p0, g0, m0.init_memory(B), batch, cfg0)
  loss1, (_, outs1) = scan.mean_loss(p1, g1, m1.init_memory(B), batch, cfg1)
  assert "aux_loss" not in outs0
  np.testing.assert_allclose(np.asarray(outs1["loss"]), np.asarray(outs0["loss"]), atol=1e-6)
  # Reference: run the layer block by block, recompute (mu, var) of its reads, numpy KL.
  layer = m1.layers[0]
  memory, expected = m1.init_memory(B)[0], []
  x = m1.embed(jnp.asarray(batch["inputs"]))
  for s in range(NUM_BLOCKS):
    h = layer.attn_norm(x[:, s * L:(s + 1) * L])
    _, mu, var = layer.attention.read(h, memory["ltm_coeffs"])
    mu, var = np.asarray(mu, np.float64), np.asarray(var, np.float64)
    kl = 0.5 * (var / 0.05 ** 2 - np.log(var / 0.05 ** 2) - 1.0)
    expected.append(0.5 * kl.mean(axis=(1, 2)) * np.asarray(memory["ltm_filled"], np.float64))
    _, memory, _ = layer.attention(h, memory, positions=jnp.asarray(batch["positions"][:, s * L:(s + 1) * L]),
                                   reset=jnp.full((B,), s == 0))
  expected = np.stack(expected, 1)  # [B, blocks]
  assert expected[:, 0].max() == 0 and expected[:, 2:].min() > 0
  np.testing.assert_allclose(np.asarray(outs1["aux_loss"]), expected, rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(float(loss1) - float(loss0), expected.mean(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("field,value", [("tau", 1.0), ("tau_schedule", "harmonic"),
                                         ("num_basis", 7)])
def test_bad_infinity_former_config_names_the_field(tiny_cfg, field, value):
  with pytest.raises(ValueError, match=f"model.infinity_former.{field}"):
    tiny_cfg(attention="infinity_former", infinity_former={field: value})
