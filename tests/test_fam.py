"""TransformerFAM (longctx.layers.fam) against independent references.

- the combined mask against the key sets of Algorithm 2 written out per query;
- the whole decoder against a float64 numpy transcription of Algorithm 2 (papers.md 1(a)) that builds
  Khat_t = Concat(K_{tau-m:tau-1}, K^F_{tau-1}, K_{tau,:t}) and Ktil = Concat(K^F_{tau-1}, K_tau) by
  concatenation for every query, with the prompt propagated up the stack alone, the zero residual of
  the first update, FAM positions = the last L_F positions of the compressed block;
- L_F = 0 against BSWA; one block against a stock `full` decoder with the prompt as a prefix token;
- protocol invariants: no future leak, chunked == one call, reset, no batch leak, gradients through
  the FAM to the prompt and to earlier blocks' tokens, random state passing.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx.models import scan
from longctx.models.decoder import Decoder
from longctx.ops.fam_mask import fam_attention_mask

B, L = 2, 4
H, D = 2, 8           # tiny_model_config: d_model 16, 2 heads
EPS = 1e-6            # nnx.RMSNorm's epsilon


# ----------------------------------------------------------------------------- mask

def test_mask_matches_algorithm2_key_sets():
  rng = np.random.default_rng(0)
  s, f, l = 8, 3, 4
  valid = rng.random((B, s)) < 0.6
  mask = np.asarray(fam_attention_mask(jnp.asarray(valid), f, l))
  assert mask.shape == (B, 1, f + l, s + f + l)
  cache = lambda b: [j for j in range(s) if valid[b, j]]     # columns of the cached blocks
  fam = list(range(s, s + f))                                 # columns of K^F_{tau-1}
  block = lambda t: list(range(s + f, s + f + t + 1))         # columns of K_{tau, :t}
  for b in range(B):
    for j in range(f):       # FAM query: Ktil = Concat(K^F_{tau-1}, K_tau), no cached blocks
      assert np.flatnonzero(mask[b, 0, j]).tolist() == fam + block(l - 1)
    for t in range(l):       # block query t: Khat_t = Concat(K_{tau-m:tau-1}, K^F_{tau-1}, K_{tau,:t})
      assert np.flatnonzero(mask[b, 0, f + t]).tolist() == cache(b) + fam + block(t)


# ----------------------------------------------------------------------------- numpy Algorithm 2

def np_rope(x, positions, theta=10000.0):
  """x [B, N, H, D], positions [B, N] -> rotate-half RoPE in float64."""
  half = x.shape[-1] // 2
  angle = positions.astype(np.float64)[..., None] * theta ** (-np.arange(half) / half)
  c, s = np.cos(angle)[:, :, None], np.sin(angle)[:, :, None]
  a, b = x[..., :half], x[..., half:]
  return np.concatenate([a * c - b * s, b * c + a * s], axis=-1)


def rms(x, scale):
  return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * scale


def silu(x):
  return x / (1 + np.exp(-x))


def attend(q, keys, values):
  """q [B, H, D]; keys, values [B, S, H, D] -> [B, H, D] (softmax over S)."""
  logits = np.einsum("bhd,bshd->bhs", q, keys) / np.sqrt(D)
  w = np.exp(logits - logits.max(-1, keepdims=True))
  w /= w.sum(-1, keepdims=True)
  return np.einsum("bhs,bshd->bhd", w, values)


def np_params(params):
  return jax.tree.map(lambda v: np.asarray(v, np.float64), nnx.to_pure_dict(params))


def np_fam_decoder(p, tokens, positions, fam_len, mem_blocks, num_layers, block_len=L,
                   state_norm=False):
  """Algorithm 2 per layer and block, every example reset at block 0. Returns (logits [B, T, V],
  final FAM per layer [B, F, d]). state_norm: the carried FAM is RMSNorm(F_tau) (longctx option)."""
  f = fam_len
  b, t = tokens.shape
  lay = p["layers"]
  proj = lambda l, x, w: x @ lay[l]["attention"][w]["kernel"]
  heads = lambda x: x.reshape(x.shape[0], x.shape[1], H, D)

  def ff(l, a):                         # O = FF(PreLN(A)) + A
    m = lay[l]["mlp"]
    n = rms(a, lay[l]["mlp_norm"]["scale"])
    return a + (silu(n @ m["gate"]["kernel"]) * (n @ m["up"]["kernel"])) @ m["down"]["kernel"]

  # The initial FAM of layer l: the prompt propagated up the stack alone (full attention among
  # its rows, normal residual, same FF).
  stack = [p["feedback_prompt"][None]]
  for l in range(num_layers - 1):
    x = stack[-1]
    n = rms(x, lay[l]["attn_norm"]["scale"])
    pos = np.arange(f)[None]
    q, k, v = np_rope(heads(proj(l, n, "query")), pos), np_rope(heads(proj(l, n, "key")), pos), heads(proj(l, n, "value"))
    out = np.stack([attend(q[:, j], k, v) for j in range(f)], axis=1).reshape(1, f, H * D)
    stack.append(ff(l, x + proj(l, out, "out")))

  x_all = p["embed"]["embedding"][tokens]
  fam = [None] * num_layers
  cache = [[] for _ in range(num_layers)]   # per layer: list of (K, V) of past blocks, rotated
  logits = []
  for tau in range(t // block_len):
    sl = slice(tau * block_len, (tau + 1) * block_len)
    h, pos = x_all[:, sl], positions[:, sl]
    fam_pos = pos[:, :1] - f + np.arange(f)[None]
    for l in range(num_layers):
      f_prev = np.broadcast_to(stack[l], (b, f, H * D)) if tau == 0 else fam[l]
      residual = np.zeros_like(f_prev) if tau == 0 else f_prev   # zero residual: first update
      norm = lambda z: rms(z, lay[l]["attn_norm"]["scale"])
      q = np_rope(heads(proj(l, norm(h), "query")), pos)
      k = np_rope(heads(proj(l, norm(h), "key")), pos)
      v = heads(proj(l, norm(h), "value"))
      qf = np_rope(heads(proj(l, norm(f_prev), "query")), fam_pos)
      kf = np_rope(heads(proj(l, norm(f_prev), "key")), fam_pos)
      vf = heads(proj(l, norm(f_prev), "value"))
      past = cache[l][max(0, tau - mem_blocks):tau] if mem_blocks else []
      ck = [c[0] for c in past]
      cv = [c[1] for c in past]
      a = np.empty_like(q)
      for i in range(block_len):          # Khat_t, Vhat_t by concatenation
        k_hat = np.concatenate(ck + [kf, k[:, :i + 1]], axis=1)
        v_hat = np.concatenate(cv + [vf, v[:, :i + 1]], axis=1)
        a[:, i] = attend(q[:, i], k_hat, v_hat)
      a_block = proj(l, a.reshape(b, block_len, H * D), "out") + h
      k_til = np.concatenate([kf, k], axis=1)   # Ktil, Vtil: previous FAM + the whole block
      v_til = np.concatenate([vf, v], axis=1)
      af = np.stack([attend(qf[:, j], k_til, v_til) for j in range(f)], axis=1)
      a_fam = proj(l, af.reshape(b, f, H * D), "out") + residual
      cache[l].append((k, v))
      fam[l] = ff(l, a_fam)
      if state_norm:
        fam[l] = rms(fam[l], lay[l]["attention"]["state_norm"]["scale"])
      h = ff(l, a_block)
    logits.append(rms(h, p["final_norm"]["scale"]) @ p["lm_head"]["kernel"])
  return np.concatenate(logits, axis=1), fam


# ----------------------------------------------------------------------------- harness

@functools.partial(jax.jit, static_argnums=0)
def decoder_step(graphdef, params, tokens, memory, positions, reset):
  return nnx.merge(graphdef, params)(tokens, memory, positions=positions, reset=reset)


def loop(graphdef, params, tokens, positions, memory, reset, block_len=L):
  """Per-block Python loop; reset [B] before the first block only."""
  out = []
  for s in range(tokens.shape[1] // block_len):
    sl = slice(s * block_len, (s + 1) * block_len)
    r = jnp.asarray(reset) if s == 0 else jnp.zeros((tokens.shape[0],), bool)
    logits, memory = decoder_step(graphdef, params, jnp.asarray(tokens[:, sl]), memory,
                                  jnp.asarray(positions[:, sl]), r)
    out.append(np.asarray(logits))
  return np.concatenate(out, axis=1), memory


def build(tiny_cfg, fam_len=3, mem_blocks=1, num_layers=2, seed=0, state_norm=False, **kw):
  cfg = tiny_cfg(attention="fam", num_layers=num_layers, block_len=L,
                 fam=dict(fam_len=fam_len, mem_blocks=mem_blocks, state_norm=state_norm), **kw)
  model = Decoder(cfg, nnx.Rngs(seed))
  graphdef, params = nnx.split(model)
  return cfg, model, graphdef, params


def data(seed, vocab=32, t=4 * L):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, vocab, size=(B, t)).astype(np.int32)
  positions = np.stack([np.arange(t) + 7, np.arange(t) + 30]).astype(np.int32)
  return tokens, positions


ALL = np.ones((B,), bool)


# ----------------------------------------------------------------------------- tests

@pytest.mark.parametrize("fam_len,mem_blocks,state_norm", [(3, 1, False), (2, 0, False),
                                                            (1, 2, False), (3, 1, True)])
def test_decoder_matches_numpy_algorithm2(tiny_cfg, fam_len, mem_blocks, state_norm):
  cfg, model, graphdef, params = build(tiny_cfg, fam_len, mem_blocks, state_norm=state_norm)
  if state_norm:   # move the learned scales off 1 so a norm without its scale would not match
    for i, layer in enumerate(model.layers):
      scale = layer.attention.state_norm.scale
      scale[...] = 1.0 + 0.5 * jax.random.normal(jax.random.key(i), scale.shape)
    graphdef, params = nnx.split(model)
  tokens, positions = data(1)
  logits, memory = loop(graphdef, params, tokens, positions, model.init_memory(B), ALL)
  ref_logits, ref_fam = np_fam_decoder(np_params(params), tokens, positions, fam_len, mem_blocks,
                                       cfg.num_layers, state_norm=state_norm)
  np.testing.assert_allclose(logits, ref_logits, atol=2e-5, rtol=2e-5)
  for layer_mem, fam in zip(memory, ref_fam):
    np.testing.assert_allclose(np.asarray(layer_mem["fam"]), fam, atol=2e-5, rtol=2e-5)
  # The reference is sensitive to the FAM: a different prompt changes the later blocks.
  p = np_params(params)
  p["feedback_prompt"] = p["feedback_prompt"] + 0.5
  other, _ = np_fam_decoder(p, tokens, positions, fam_len, mem_blocks, cfg.num_layers,
                            state_norm=state_norm)
  assert np.max(np.abs(other[:, -L:] - ref_logits[:, -L:])) > 1e-3
  if state_norm:   # ... and the option changes the model
    plain, _ = np_fam_decoder(np_params(params), tokens, positions, fam_len, mem_blocks,
                              cfg.num_layers)
    assert np.max(np.abs(plain[:, -L:] - ref_logits[:, -L:])) > 1e-3


@pytest.mark.parametrize("mem_blocks", [0, 2])
def test_fam_len_zero_equals_bswa(tiny_cfg, mem_blocks):
  _, model, graphdef, params = build(tiny_cfg, fam_len=0, mem_blocks=mem_blocks)
  bswa_cfg = tiny_cfg(attention="bswa", num_layers=2, block_len=L, bswa=dict(mem_blocks=mem_blocks))
  bswa = Decoder(bswa_cfg, nnx.Rngs(0))
  bswa_graphdef, bswa_params = nnx.split(bswa)
  assert jax.tree.structure(params) == jax.tree.structure(bswa_params)
  jax.tree.map(np.testing.assert_array_equal, nnx.to_pure_dict(params),
               nnx.to_pure_dict(bswa_params))   # same seed -> same weights: FAM adds none
  tokens, positions = data(2)
  logits, _ = loop(graphdef, params, tokens, positions, model.init_memory(B), ALL)
  ref, _ = loop(bswa_graphdef, params, tokens, positions, bswa.init_memory(B), ALL)
  np.testing.assert_array_equal(logits, ref)


def test_one_block_equals_plain_decoder_with_the_prompt_as_prefix(tiny_cfg):
  """One block, RSP off: FAM's logits = a stock `full` (causal) decoder on [prompt; block], where
  the prompt is fed as an extra token whose embedding row is the FAM prompt, at position p0 - 1.
  Exact for L_F = 1 (the prompt's full self-attention among its rows equals causal attention)."""
  cfg, model, graphdef, params = build(tiny_cfg, fam_len=1, mem_blocks=1)
  full_cfg = tiny_cfg(attention="full", num_layers=2, block_len=L)
  full = Decoder(full_cfg, nnx.Rngs(0))
  full_graphdef, full_params = nnx.split(full)
  pure = nnx.to_pure_dict(params)
  prompt_id = cfg.vocab_size - 1
  full_pure = dict(pure)
  full_pure.pop("feedback_prompt")
  full_pure["embed"] = {"embedding": pure["embed"]["embedding"].at[prompt_id].set(
      pure["feedback_prompt"][0])}
  nnx.replace_by_pure_dict(full_params, full_pure)
  rng = np.random.default_rng(3)
  tokens = rng.integers(0, prompt_id, size=(B, L)).astype(np.int32)   # never the prompt's id
  positions = np.stack([np.arange(L) + 5, np.arange(L) + 19]).astype(np.int32)
  logits, _ = loop(graphdef, params, tokens, positions, model.init_memory(B), ALL)
  prefixed = np.concatenate([np.full((B, 1), prompt_id, np.int32), tokens], axis=1)
  prefixed_pos = np.concatenate([positions[:, :1] - 1, positions], axis=1)
  ref, _ = decoder_step(full_graphdef, full_params, jnp.asarray(prefixed), full.init_memory(B),
                        jnp.asarray(prefixed_pos), jnp.asarray(ALL))
  np.testing.assert_allclose(logits, np.asarray(ref)[:, 1:], atol=1e-5, rtol=1e-5)


def test_no_token_sees_the_future(tiny_cfg):
  """Changing token t leaves every logit before t unchanged, also in the first block (where the
  FAM at layer >= 1 is the propagated prompt, never a FAM that saw the block)."""
  cfg, model, graphdef, params = build(tiny_cfg, fam_len=2, mem_blocks=1, num_layers=3)
  tokens, positions = data(4, t=3 * L)
  base, _ = loop(graphdef, params, tokens, positions, model.init_memory(B), ALL)
  for t in (1, L - 1, L, 2 * L + 2):
    changed = tokens.copy()
    changed[:, t] = (changed[:, t] + 1) % cfg.vocab_size
    out, _ = loop(graphdef, params, changed, positions, model.init_memory(B), ALL)
    np.testing.assert_array_equal(out[:, :t], base[:, :t], err_msg=f"t={t}")
    assert np.max(np.abs(out[:, t] - base[:, t])) > 1e-4


def test_scan_in_chunks_equals_one_call(tiny_cfg):
  cfg, model, graphdef, params = build(tiny_cfg, fam_len=2, mem_blocks=1)
  tokens, positions = data(5)
  batch = {"inputs": tokens, "targets": np.roll(tokens, -1, 1), "positions": positions,
           "reset": ALL}
  run = jax.jit(lambda p, m, b: scan.run_blocks(graphdef, p, m, b, cfg))
  mem_one, out_one = run(params, model.init_memory(B), batch)
  half = tokens.shape[1] // 2
  first = {k: (v[:, :half] if v.ndim == 2 else v) for k, v in batch.items()}
  second = {k: (v[:, half:] if v.ndim == 2 else v) for k, v in batch.items()}
  second["reset"] = np.zeros((B,), bool)
  mem, out_a = run(params, model.init_memory(B), first)
  mem, out_b = run(params, mem, second)
  np.testing.assert_allclose(np.concatenate([out_a["loss"], out_b["loss"]], 1), out_one["loss"],
                             atol=1e-5, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), mem, mem_one)
  # And the per-block Python loop gives the same logits' losses (scan == loop).
  logits, _ = loop(graphdef, params, tokens, positions, model.init_memory(B), ALL)
  logp = jax.nn.log_softmax(jnp.asarray(logits), -1)
  nll = -np.take_along_axis(np.asarray(logp), batch["targets"][..., None], -1)[..., 0]
  np.testing.assert_allclose(out_one["loss"], nll, atol=1e-5, rtol=1e-5)


def test_reset_restarts_from_the_prompt_and_examples_do_not_leak(tiny_cfg):
  cfg, model, graphdef, params = build(tiny_cfg, fam_len=2, mem_blocks=1)
  warm_tokens, warm_pos = data(6, t=3 * L)
  _, carried = loop(graphdef, params, warm_tokens, warm_pos, model.init_memory(B), ALL)
  tokens, positions = data(7, t=2 * L)
  reset_one, _ = loop(graphdef, params, tokens, positions, carried, np.array([True, False]))
  fresh, _ = loop(graphdef, params, tokens, positions, model.init_memory(B), ALL)
  kept, _ = loop(graphdef, params, tokens, positions, carried, np.array([False, False]))
  np.testing.assert_array_equal(reset_one[0], fresh[0])
  np.testing.assert_array_equal(reset_one[1], kept[1])
  assert np.max(np.abs(fresh[0] - kept[0])) > 1e-3   # the carried FAM and cache matter
  # Batch independence: changing example 0's tokens leaves example 1's logits unchanged.
  other = tokens.copy()
  other[0] = (other[0] + 5) % cfg.vocab_size
  changed, _ = loop(graphdef, params, other, positions, carried, np.array([False, False]))
  np.testing.assert_array_equal(changed[1], kept[1])
  assert np.max(np.abs(changed[0] - kept[0])) > 1e-3


@functools.lru_cache(maxsize=None)
def _grad_fn(graphdef, cfg_json):
  import ml_collections
  cfg = ml_collections.ConfigDict(__import__("json").loads(cfg_json))
  loss = lambda params, memory, batch: scan.mean_loss(params, graphdef, memory, batch, cfg)[0]
  return jax.jit(jax.grad(loss))


def test_gradients_reach_the_prompt_and_earlier_blocks_through_the_fam(tiny_cfg):
  """Loss on block 2 only, no cached blocks (mem_blocks 0), 3 blocks: the prompt and block 0's
  tokens (ids 0..7, used nowhere else) reach it only through the FAM written in blocks 0 and 1.
  Cutting the memory gradient at every block boundary (bptt_blocks=1) removes both."""
  grads = {}
  for cut in (0, 1):
    cfg, model, graphdef, params = build(tiny_cfg, fam_len=2, mem_blocks=0, bptt_blocks=cut)
    rng = np.random.default_rng(8)
    inputs = rng.integers(8, 32, size=(B, 3 * L)).astype(np.int32)
    inputs[:, :L] = rng.integers(0, 8, size=(B, L))
    weights = np.zeros((B, 3 * L), np.float32)
    weights[:, 2 * L:] = 1.0
    batch = {"inputs": inputs, "targets": rng.integers(0, 32, size=(B, 3 * L)).astype(np.int32),
             "weights": weights, "reset": ALL}
    g = _grad_fn(graphdef, cfg.to_json())(params, model.init_memory(B), batch)
    grads[cut] = (np.asarray(g["feedback_prompt"][...]),
                  np.asarray(g["embed"]["embedding"][...])[:8])
  assert np.max(np.abs(grads[0][0])) > 1e-6 and np.max(np.abs(grads[0][1])) > 1e-6
  np.testing.assert_array_equal(grads[1][0], 0.0)
  np.testing.assert_array_equal(grads[1][1], 0.0)


def test_random_state_passing_starts_every_example_from_element_0s_fam(tiny_cfg):
  cfg, model, graphdef, params = build(tiny_cfg, fam_len=2, mem_blocks=1)
  warm_tokens, warm_pos = data(9, t=2 * L)
  _, carried = loop(graphdef, params, warm_tokens, warm_pos, model.init_memory(B), ALL)
  tokens, positions = data(10, t=2 * L)
  passed, _ = loop(graphdef, params, tokens, positions, model.pass_state(carried, jnp.array(True)),
                   ALL)
  # Reference: a fresh cache (reset), element 0's FAM as every example's previous FAM, no reset.
  expect_mem = tuple(dict(fresh, fam=jnp.broadcast_to(c["fam"][:1], c["fam"].shape))
                     for fresh, c in zip(model.init_memory(B), carried))
  expected, _ = loop(graphdef, params, tokens, positions, expect_mem, np.zeros((B,), bool))
  np.testing.assert_allclose(passed, expected, atol=1e-6, rtol=1e-6)
  not_passed, _ = loop(graphdef, params, tokens, positions,
                       model.pass_state(carried, jnp.array(False)), ALL)
  fresh, _ = loop(graphdef, params, tokens, positions, model.init_memory(B), ALL)
  np.testing.assert_array_equal(not_passed, fresh)
  assert np.max(np.abs(passed - fresh)) > 1e-3
