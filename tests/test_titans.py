"""Titans layers (longctx.layers.titans, titans_arch) against float64 numpy transcriptions of the
paper's equations (tests/titans_reference.py) and the protocol every memory layer must satisfy.

- LMM: the whole layer (projections, convolutions, gates, chunked memory, read-out) token by token.
- MAC: eqs. 21-25 in their order, written out by hand: retrieve with the segment's queries from
  the previous memory, attend over [persistent, retrieved, segment], write the ATTENTION OUTPUT,
  read again, gate. A MAC that is really MAG (memory written from the input, retrieved tokens
  unused) fails it, and so does one that reads with the segment's own update.
- MAG and MAL: eqs. 26-28 and 29-31 with a sliding window over two blocks and the persistent prefix.
- every variant: one scanned call == three per-block calls with the carried memory, reset, batch separation,
  gradients into W_K/W_V through memory written in earlier blocks, data-dependent gates.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import titans_reference as ref
from conftest import tiny_model_config
from longctx.layers import make_attention
from longctx.models import scan
from longctx.models.decoder import Decoder

VARIANTS = ["lmm", "mac", "mag", "mal"]
B, L, H, DM = 2, 4, 2, 16
D = DM // H
CHUNK = 2
MAX_LR = 0.2   # larger than the default so the memory visibly moves in a few tokens


def layer_config(variant, **titans):
  # No inner clip by default here: the references below do not clip (the clip has its own case).
  opts = dict(variant=variant, chunk_size=CHUNK, max_lr=MAX_LR, memory_depth=2,
              remat_chunks=False, max_grad_norm=0.0)   # compiles faster; the remat path is tested in the 1,000-chunk test
  opts.update(titans)  # may override the variant
  return tiny_model_config(attention="titans", titans=opts)


def make_layer(variant, seed=0, **titans):
  return nnx.split(make_attention(layer_config(variant, **titans), nnx.Rngs(seed)))


@functools.partial(jax.jit, static_argnums=0)
def run_layer(graphdef, state, x, memory, reset, offset=0):
  """The layer over x [B, T, d] block by block with lax.scan; positions start at `offset`."""
  b, t, d = x.shape
  n = t // L
  positions = jnp.broadcast_to(jnp.arange(t) + offset, (b, t))
  xs = (jnp.swapaxes(x.reshape(b, n, L, d), 0, 1), jnp.swapaxes(positions.reshape(b, n, L), 0, 1),
        jnp.zeros((n, b), bool).at[0].set(reset))

  def body(mem, inp):
    y, mem = nnx.merge(graphdef, state)(inp[0], mem, positions=inp[1], reset=inp[2])
    return mem, y
  memory, ys = jax.lax.scan(body, memory, xs)
  return jnp.swapaxes(ys, 0, 1).reshape(b, t, d), memory


def fresh(graphdef, state, x):
  memory = nnx.merge(graphdef, state).init_memory(x.shape[0])
  return run_layer(graphdef, state, x, memory, jnp.ones((x.shape[0],), bool))


def inputs(seed=0, t=12, b=B):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(b, t, DM)), jnp.float32)


def weights(state):
  return ref.to_numpy(nnx.to_pure_dict(state))


# ------------------------------------------------------------------------ numpy references

@pytest.mark.parametrize("opts", [dict(), dict(memory_depth=1, momentum=False, decay=False),
                                  dict(conv=False, normalize_values=False, chunk_size=4),
                                  dict(max_grad_norm=0.3),   # below most tokens' norms: clips
                                  dict(max_momentum=0.5),
                                  # forgetting towards W_0, with alpha ~0.27 so it matters
                                  dict(forget_to="initial", alpha_bias=-1.0)])
def test_lmm_layer_matches_token_by_token_reference(opts):
  graphdef, state = make_layer("lmm", **opts)
  x = inputs()
  y, _ = fresh(graphdef, state, x)
  p = weights(state)["memory"]
  for b in range(B):
    xb = np.asarray(x[b], np.float64)
    mem = ref.MemoryRef(p, H, opts.get("chunk_size", CHUNK), MAX_LR,
                        momentum=opts.get("momentum", True), decay=opts.get("decay", True),
                        conv=opts.get("conv", True),
                        normalize_values=opts.get("normalize_values", True),
                        max_grad_norm=opts.get("max_grad_norm", 0.0),
                        max_momentum=opts.get("max_momentum", 1.0),
                        forget_to=opts.get("forget_to", "zero"))
    q = mem.queries(xb)
    k, v = mem.keys_values(xb)
    reads = mem.write_read(k, v, q, *mem.gates(xb))
    np.testing.assert_allclose(np.asarray(y[b]), mem.readout(reads, xb), rtol=2e-4, atol=2e-5)


def make_perturbed_layer(variant, output_gate):
  """make_layer with every vector parameter (norm scales, biases) moved off its initial ones or
  zeros, so e.g. a gate that swaps RMSNorm(y) and RMSNorm(m) or drops a bias cannot pass."""
  model = nnx.merge(*make_layer(variant, output_gate=output_gate))
  rng = np.random.default_rng(7)
  for _, leaf in nnx.iter_graph(model):
    if isinstance(leaf, nnx.Param) and leaf.ndim == 1:
      leaf[...] = leaf[...] + jnp.asarray(rng.normal(0, 0.5, leaf.shape), leaf.dtype)
  return nnx.split(model)


def np_output_gate(g, y, m):
  """(x) of eqs. 25 and 28 for both model.titans.output_gate modes; g: the gate's parameters."""
  ny, nm = ref.rmsnorm(y, g["norm_y"]["scale"]), ref.rmsnorm(m, g["norm_m"]["scale"])
  if "mix" in g:   # 'mix': a convex per-channel mixture
    a = ref.sigmoid(np.concatenate([ny, nm], -1) @ g["mix"]["kernel"] + g["mix"]["bias"])
    return (a * ny + (1 - a) * nm) @ g["out"]["kernel"]
  return (ny * ref.sigmoid(nm)) @ g["out"]["kernel"]   # 'sigmoid': the memory gates y


def np_mac(p, x, positions):
  """MAC (eqs. 21-25) for one example x [T, d], segment = block of L tokens."""
  mem = ref.MemoryRef(p["memory"], H, CHUNK, MAX_LR)
  proj = lambda a, name: (a @ p[name]["kernel"]).reshape(len(a), H, D)
  persistent = p["persistent"]
  out = []
  for s in range(len(x) // L):
    xs, pos = x[s * L:(s + 1) * L], positions[s * L:(s + 1) * L]
    # (21) retrieve with the segment's queries from the memory of the earlier segments
    h = mem.readout(mem.read(mem.queries(xs, "q_seg")), xs)
    # (22)-(23) attend over [persistent, retrieved, segment]; h_j and x_j visible for j <= i
    q = ref.rope(proj(xs, "query"), pos)
    k = np.concatenate([ref.rope(proj(persistent, "key"), np.full(len(persistent), pos[0])),
                        ref.rope(proj(h, "key"), pos), ref.rope(proj(xs, "key"), pos)])
    v = np.concatenate([proj(persistent, "value"), proj(h, "value"), proj(xs, "value")])
    n_p = len(persistent)
    att = np.zeros((L, H, D))
    for i in range(L):
      visible = list(range(n_p)) + [n_p + j for j in range(i + 1)] + [n_p + L + j for j in range(i + 1)]
      for hh in range(H):
        logits = np.array([q[i, hh] @ k[j, hh] for j in visible]) / np.sqrt(D)
        w = np.exp(logits - logits.max())
        att[i, hh] = (w / w.sum()) @ v[visible, hh]
    y = att.reshape(L, DM) @ p["out"]["kernel"]
    # (24) write the attention output, RMS-normalised (mac_write_norm); (25) read again after
    # each write, then gate
    u = ref.rmsnorm(y, p["write_norm"]["scale"]) if "write_norm" in p else y
    k2, v2 = mem.keys_values(u)
    reads = mem.write_read(k2, v2, mem.queries(u, "q_out"), *mem.gates(u))
    m = mem.readout(reads, u)
    out.append(np_output_gate(p["gate"], y, m))
  return np.concatenate(out)


@pytest.mark.parametrize("output_gate", ["sigmoid", "mix"])
def test_mac_follows_equations_21_to_25_in_order(output_gate):
  graphdef, state = make_perturbed_layer("mac", output_gate)
  x = inputs(1)
  y, _ = fresh(graphdef, state, x)
  p = weights(state)
  for b in range(B):
    expected = np_mac(p, np.asarray(x[b], np.float64), np.arange(x.shape[1]))
    np.testing.assert_allclose(np.asarray(y[b]), expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("write_norm", [True, False])
def test_mac_memory_write_is_invariant_to_the_scale_of_the_attention_output(write_norm):
  """With mac_write_norm the memory sees RMSNorm(y): scaling the attention's output projection
  (so y) by 20 leaves the memory state unchanged; without it the gates and the write move."""
  graphdef, state = make_layer("mac", mac_write_norm=write_norm)
  x = inputs(2, t=2 * L)
  _, mem = fresh(graphdef, state, x)
  model = nnx.merge(graphdef, state)
  model.out.kernel[...] = model.out.kernel[...] * 20.0
  _, mem2 = fresh(*nnx.split(model), x)
  diff = max(float(jnp.abs(a - b).max()) for a, b in zip(mem["weights"], mem2["weights"]))
  if write_norm:
    assert diff < 1e-4, diff
  else:
    assert diff > 1e-3, diff


def test_mac_writes_the_attention_output_not_the_input():
  """Persistent tokens reach the memory only through the attention output y (eq. 24)."""
  graphdef, state = make_layer("mac")
  x = inputs(2, t=L)
  _, mem = fresh(graphdef, state, x)
  model = nnx.merge(graphdef, state)
  model.persistent[...] = model.persistent[...] + 1.0
  _, mem2 = fresh(*nnx.split(model), x)
  diff = max(float(jnp.abs(a - b).max()) for a, b in zip(mem["weights"], mem2["weights"]))
  assert diff > 1e-4


def np_window_attention(p, xs_all, s, positions):
  """BSWA with the persistent prefix (window: this block + the previous one) for block s."""
  proj = lambda a, name: (a @ p["attention"][name]["kernel"]).reshape(len(a), H, D)
  lo = max(0, s - 1) * L
  xs, ctx = xs_all[s * L:(s + 1) * L], xs_all[lo:(s + 1) * L]
  pos, ctx_pos = positions[s * L:(s + 1) * L], positions[lo:(s + 1) * L]
  persistent = p["persistent"]
  q = ref.rope(proj(xs, "query"), pos)
  k = np.concatenate([ref.rope(proj(persistent, "key"), np.full(len(persistent), pos[0])),
                      ref.rope(proj(ctx, "key"), ctx_pos)])
  v = np.concatenate([proj(persistent, "value"), proj(ctx, "value")])
  n_p, n_prev = len(persistent), s * L - lo
  att = np.zeros((L, H, D))
  for i in range(L):
    visible = list(range(n_p + n_prev + i + 1))
    for hh in range(H):
      logits = np.array([q[i, hh] @ k[j, hh] for j in visible]) / np.sqrt(D)
      w = np.exp(logits - logits.max())
      att[i, hh] = (w / w.sum()) @ v[visible, hh]
  return att.reshape(L, DM) @ p["attention"]["out"]["kernel"]


def np_mag_mal(p, x, positions, variant):
  """MAG: o = SWA*(x) (x) M(x); MAL: m = M(x), o = m + SWA*(RMSNorm(x + m)). x [T, d]."""
  mem = ref.MemoryRef(p["memory"], H, CHUNK, MAX_LR)
  q = mem.queries(x)
  k, v = mem.keys_values(x)
  m = mem.readout(mem.write_read(k, v, q, *mem.gates(x)), x)   # the LMM is block-free
  if variant == "mal":
    h = ref.rmsnorm(x + m, p["norm"]["scale"])
    return m + np.concatenate([np_window_attention(p, h, s, positions) for s in range(len(x) // L)])
  y = np.concatenate([np_window_attention(p, x, s, positions) for s in range(len(x) // L)])
  return np_output_gate(p["gate"], y, m)


@pytest.mark.parametrize("variant,output_gate", [("mag", "sigmoid"), ("mag", "mix"), ("mal", "sigmoid")])
def test_mag_and_mal_match_their_equations(variant, output_gate):
  graphdef, state = make_perturbed_layer(variant, output_gate)
  x = inputs(10)
  y, _ = fresh(graphdef, state, x)
  p = weights(state)
  for b in range(B):
    expected = np_mag_mal(p, np.asarray(x[b], np.float64), np.arange(x.shape[1]), variant)
    np.testing.assert_allclose(np.asarray(y[b]), expected, rtol=2e-4, atol=2e-5)


# ------------------------------------------------------------------------ protocol invariants

@pytest.mark.parametrize("variant", VARIANTS)
def test_one_call_equals_three_per_block_calls_with_carried_memory(variant):
  """The scanned decoder over 3 blocks == 3 calls of one block each, memory carried between."""
  cfg = layer_config(variant)
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  t = 3 * L
  tokens = jnp.asarray(np.random.default_rng(4).integers(0, cfg.vocab_size, size=(B, t + 1)),
                       jnp.int32)
  batch = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}
  run = jax.jit(lambda p, m, bt: scan.run_blocks(graphdef, p, m, bt, cfg))
  _, whole = run(params, model.init_memory(B), batch)
  memory, parts = model.init_memory(B), []
  for c in range(3):
    sl = slice(c * L, (c + 1) * L)
    piece = {"inputs": batch["inputs"][:, sl], "targets": batch["targets"][:, sl],
             "positions": jnp.broadcast_to(jnp.arange(sl.start, sl.stop), (B, L)),
             "reset": jnp.full((B,), c == 0)}
    memory, outs = run(params, memory, piece)
    parts.append(outs["loss"])
  np.testing.assert_allclose(np.concatenate(parts, 1), whole["loss"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_reset_clears_memory_and_examples_do_not_leak(variant):
  graphdef, state = make_layer(variant)
  x = inputs(5)
  y_fresh, _ = fresh(graphdef, state, x)
  _, used = fresh(graphdef, state, inputs(6))           # memory full of other text
  y_reset, _ = run_layer(graphdef, state, x, used, jnp.array([True, False]))
  np.testing.assert_allclose(np.asarray(y_reset[0]), np.asarray(y_fresh[0]), rtol=1e-6, atol=1e-6)
  assert float(jnp.abs(y_reset[1] - y_fresh[1]).max()) > 1e-4   # example 1 kept its memory
  y_moved, _ = fresh(graphdef, state, x.at[1].multiply(-2.0))
  np.testing.assert_array_equal(np.asarray(y_moved[0]), np.asarray(y_fresh[0]))


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_w_k_w_v_through_memory_written_in_earlier_blocks(variant):
  graphdef, state = make_layer(variant)
  x = inputs(7, t=3 * L)
  model = nnx.merge(graphdef, state)
  memory0 = model.init_memory(B)

  def last_block_loss(state, cut):
    """Loss on the last block only; `cut` stops gradients through the memory carried into it."""
    _, mem = run_layer(graphdef, state, x[:, :2 * L], memory0, jnp.ones((B,), bool))
    if cut:
      mem = jax.lax.stop_gradient(mem)
    y, _ = run_layer(graphdef, state, x[:, 2 * L:], mem, jnp.zeros((B,), bool), offset=2 * L)
    return jnp.sum(jnp.square(y))

  both = jax.jit(lambda s: (jax.grad(last_block_loss)(s, False), jax.grad(last_block_loss)(s, True)))
  full, cut = (nnx.to_pure_dict(g)["memory"] for g in both(state))
  for name in ("key", "value", "theta", "eta", "alpha"):
    leaf = "kernel"
    through_memory = np.abs(np.asarray(full[name][leaf]) - np.asarray(cut[name][leaf])).max()
    assert through_memory > 1e-7, f"no gradient reaches memory.{name} through earlier blocks"
  for i, g in full["initial_weights"].items():
    assert np.abs(np.asarray(g)).max() > 1e-7, f"no gradient into the initial memory layer {i}"


def test_gates_are_data_dependent_per_token_head_and_example():
  graphdef, state = make_layer("mac")
  model = nnx.merge(graphdef, state)
  x = inputs(8, t=8)
  for gate in model.memory.gates(x):                  # theta, eta, alpha [B, L, H]
    g = np.asarray(gate)
    assert g.std(axis=1).min() > 1e-4                   # varies over tokens, per example and head
    assert np.abs(g[0] - g[1]).max() > 1e-4             # differs between examples
    assert np.abs(g[..., 0] - g[..., 1]).max() > 1e-4   # differs between heads
  memory = model.init_memory(B)
  m = model.memory.readout(model.memory.read(model.memory.queries(x, memory, "q_seg")[0], memory), x)
  out_gate = np.asarray(model.gate.gate_values(x, m))
  assert out_gate.std(axis=1).min() > 1e-4
  # Per-chunk gates: constant inside a chunk, still data dependent across chunks.
  graphdef, state = make_layer("lmm", gates="chunk")
  theta = np.asarray(nnx.merge(graphdef, state).memory.gates(x)[0])   # [B, 8, H], chunks of 2
  np.testing.assert_array_equal(theta[:, 0::2], theta[:, 1::2])
  assert np.abs(theta[:, 0] - theta[:, 2]).max() > 1e-4


def test_memory_stays_finite_over_a_thousand_chunks_in_the_layer():
  graphdef, state = make_layer("lmm", chunk_size=2, max_lr=0.1, remat_chunks=True)
  x = inputs(9, t=2000, b=1)   # RMS 1, as the decoder's pre-norm hands it over
  model = nnx.merge(graphdef, state)
  y, mem = jax.jit(lambda x: model(x, model.init_memory(1), positions=None,
                                   reset=jnp.ones((1,), bool)))(x)
  assert np.isfinite(np.asarray(y)).all()
  assert all(np.isfinite(np.asarray(w)).all() for w in mem["weights"] + mem["momentum"])


@pytest.mark.parametrize("field,value", [("variant", "mad"), ("chunk_size", 3),
                                         ("gates", "block"), ("memory_depth", 0),
                                         ("max_grad_norm", -1.0), ("output_gate", "tanh"),
                                         ("max_momentum", 0.0), ("max_momentum", 1.5),
                                         ("forget_to", "w0"), ("chunk_unroll", 0)])
def test_bad_titans_config_names_the_field(field, value):
  with pytest.raises(ValueError, match=f"model.titans.{field}"):
    tiny_model_config(attention="titans", titans={"chunk_size": CHUNK, field: value})


def test_chunk_unroll_reaches_the_memory_and_leaves_the_output_unchanged():
  # model.titans.chunk_unroll is plumbing for the GPU (fewer host-launched loop iterations): a
  # MAC layer with both chunks of each block in one iteration computes what the rolled loop does.
  x = inputs(5)
  graphdef, state = make_layer("mac")
  graphdef_u, state_u = make_layer("mac", chunk_unroll=2)
  assert nnx.merge(graphdef_u, state_u).memory.chunk_unroll == 2
  y, mem = fresh(graphdef, state, x)
  y_u, mem_u = fresh(graphdef_u, state_u, x)
  np.testing.assert_allclose(np.asarray(y_u), np.asarray(y), rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree.leaves(mem_u), jax.tree.leaves(mem)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
