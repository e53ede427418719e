"""Titans' neural long-term memory as a layer (arXiv 2501.00663, Sec. 3 and 4.4) and `Titans (LMM)`.

NeuralMemory holds the outer-loop parameters of one memory: W_Q, W_K, W_V, a causal depthwise
convolution after each projection, the data-dependent gates theta_t, eta_t, alpha_t, the learned
initial memory weights W_0 (per head), and the output path. Its state (the inner-loop weights W,
the momentum S, and the convolutions' last inputs) is an explicit float32 pytree. The four
architectures (`model.titans.variant`) are built by `make_titans`: `lmm` here, `mac`, `mag`, `mal`
in layers/titans_arch.py.

Per token (Sec. 4.4): q, k, v = l2norm(silu(conv(x W_Q))), l2norm(silu(conv(x W_K))),
silu(conv(x W_V)) split into H heads of D; one memory per head and example; the math is in
longctx/ops/neural_memory.py. Output: W_O (RMSNorm_head(M(q)) * silu(x W_G)).

Decisions where the paper is silent (papers.md 2(e); all exposed in model.titans):
- gates: theta_t = max_lr * sigmoid(x_t w_theta + b_theta),
  eta_t = max_momentum * sigmoid(x_t w_eta + b_eta) (max_momentum 1, the default, is the paper's
  gate; below 1 it caps momentum's amplification 1 / (1 - eta) of a step),
  alpha_t = sigmoid(x_t w_alpha + b_alpha), one value per head and token (`gates='token'`, the
  paper's experiments). `gates='chunk'` shares them in a chunk (the LTI speed-up of Sec. 3.2);
  they are then computed from the chunk's FIRST token, not the chunk mean as in LUCID, whose
  mean pools future tokens of the chunk into earlier tokens' gates (a causality leak).
  The biases start at `theta_bias`, `eta_bias`, `alpha_bias`;
- the convolution is depthwise (kernel `conv_width`, identity at init) right after the linear
  projection, which plays the pointwise part of the paper's "depthwise-separable" convolution
  (the Gated DeltaNet / Mamba short convolution the paper's recipe follows);
- output normalisation + linear gating: RMSNorm per head, times silu(x W_G) (Gated DeltaNet);
- values are l2-normalised like keys (`normalize_values=True`; False is the paper read
  literally). Why: with a deep memory the curvature of the inner loss grows with the scale of v
  (the gradient on W_1 is proportional to W_2, which grows to reach v), and unnormalised values
  made the inner loop diverge within a few hundred tokens at the default step size (measured on
  inputs of RMS 3). The read-out normalises each head's read anyway (RMSNorm), so only its
  direction reaches the output and nothing is lost;
- the loss is the paper's ||M(k) - v||^2 summed over D (not halved): with a linear memory and
  no momentum/decay one step is the delta rule with rate 2 theta_t;
- W_0 is learned; every layer of the memory MLP starts at normal(0, 1/sqrt(D_in));
- forgetting pulls towards 0 (eq. 13, `forget_to='zero'`, the default) or, a switch not in the
  paper, towards the learned W_0 (`forget_to='initial'`: W_t = (1 - alpha_t) W_{t-1} +
  alpha_t W_0 + S_t). Why: with eq. 13 a memory forgets what the outer loop put into W_0 at the
  same rate as what it wrote at test time; trained MAG/MAL lost W_0's share over about the
  training length and their reads faded beyond it (experiments/titans/README.md, attempt 10).
  Measured in attempts 11-12: it lifts MAL at 4x N (seed 0: 15 -> 80) but lowers the LMM and MAC,
  and with it the linear LMM reads level with or above the deep LMM; so it is not the default.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from longctx.ops import neural_memory as nm_ops
from longctx.layers.base import reset_memory

VARIANTS = ("lmm", "mac", "mag", "mal")
GATE_MODES = ("token", "chunk")
OUTPUT_GATES = ("sigmoid", "mix")   # MAC/MAG's (x): layers/titans_arch.OutputGate
FORGET_TARGETS = ("zero", "initial")   # eq. 13's 0, or the learned W_0 (not in the paper)


def _l2_normalize(x, eps=1e-6):
  return x * jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True) + eps)


class NeuralMemory(nnx.Module):
  """The LMM's parameters and its read/write operations on an explicit state.

  state = {"weights": tuple of [B, H, D_in, D_out], "momentum": same, "conv": {stream: [B, w-1, d]}}
  A "stream" is one sequence of tokens a projection is convolved over (LMM: q, k and v all read
  x; MAC reads the segment for retrieval and the attention output for writing and reading
  again), so each keeps its own convolution tail.
  """

  def __init__(self, d_model: int, num_heads: int, opts, *, dtype, rngs: nnx.Rngs):
    self.num_heads, self.head_dim = num_heads, d_model // num_heads
    self.dtype = dtype
    self.chunk_size = opts.chunk_size
    self.per_chunk_gates = opts.gates == "chunk"
    self.use_momentum, self.use_decay = opts.momentum, opts.decay
    self.conv_width = opts.conv_width if opts.conv else 0
    self.max_lr = opts.max_lr
    self.max_momentum = opts.max_momentum
    self.max_grad_norm = opts.max_grad_norm
    self.remat_chunks = opts.remat_chunks
    self.chunk_unroll = opts.chunk_unroll
    self.normalize_values = opts.normalize_values
    self.forget_to_initial = opts.forget_to == "initial"
    linear = lambda i, o, **kw: nnx.Linear(i, o, dtype=dtype, rngs=rngs, **kw)
    self.query, self.key, self.value = (linear(d_model, d_model, use_bias=False) for _ in range(3))
    if self.conv_width:
      # Identity at init; one fresh array per kernel (shared buffers break buffer donation).
      identity = lambda: jnp.zeros((self.conv_width, d_model), jnp.float32).at[-1].set(1.0)
      self.conv_q, self.conv_k, self.conv_v = (nnx.Param(identity()) for _ in range(3))

    def gate(bias):
      return linear(d_model, num_heads, use_bias=True,
                    bias_init=nnx.initializers.constant(bias))
    self.theta = gate(opts.theta_bias)
    if self.use_momentum:
      self.eta = gate(opts.eta_bias)
    if self.use_decay:
      self.alpha = gate(opts.alpha_bias)

    d, hidden = self.head_dim, self.head_dim * opts.memory_expansion
    dims = [d] + [hidden] * (opts.memory_depth - 1) + [d]
    self.initial_weights = nnx.List([
        nnx.Param(jax.random.normal(rngs.params(), (num_heads, i, o), jnp.float32) / i ** 0.5)
        for i, o in zip(dims[:-1], dims[1:])])
    self.out_norm = nnx.RMSNorm(d, dtype=jnp.float32, rngs=rngs)
    self.out_gate = linear(d_model, d_model, use_bias=False)
    self.out = linear(d_model, d_model, use_bias=False)

  # ------------------------------------------------------------------------------------ state

  def init_state(self, batch: int, streams) -> dict:
    weights = tuple(jnp.broadcast_to(w[...], (batch,) + w.shape) for w in self.initial_weights)
    state = {"weights": weights, "momentum": tuple(jnp.zeros_like(w) for w in weights)}
    if self.conv_width:
      d = self.query.in_features
      state["conv"] = {s: jnp.zeros((batch, self.conv_width - 1, d), jnp.float32) for s in streams}
    return state

  # ------------------------------------------------------------------------------ projections

  def _conv(self, x, kernel, state, stream):
    """Causal depthwise convolution over [the stream's last w-1 inputs, x]; x [B, L, d]."""
    if not self.conv_width:
      return x, state
    tail = state["conv"][stream]
    padded = jnp.concatenate([tail.astype(x.dtype), x], axis=1)   # [B, w-1+L, d]
    l = x.shape[1]
    k = kernel[...].astype(x.dtype)
    y = sum(k[j] * padded[:, j:j + l] for j in range(self.conv_width))
    conv = dict(state["conv"], **{stream: padded[:, l:].astype(jnp.float32)})
    return y, dict(state, conv=conv)

  def _heads(self, x):
    b, l, _ = x.shape
    return x.reshape(b, l, self.num_heads, self.head_dim).astype(jnp.float32)

  def queries(self, x, state, stream="q"):
    """x [B, L, d] -> l2-normalised queries [B, L, H, D] (float32), new state."""
    q, state = self._conv(self.query(x), self.conv_q if self.conv_width else None, state, stream)
    return _l2_normalize(self._heads(jax.nn.silu(q))), state

  def keys_values(self, x, state, streams=("k", "v")):
    k, state = self._conv(self.key(x), self.conv_k if self.conv_width else None, state, streams[0])
    v, state = self._conv(self.value(x), self.conv_v if self.conv_width else None, state, streams[1])
    v = self._heads(jax.nn.silu(v))
    v = _l2_normalize(v) if self.normalize_values else v
    return _l2_normalize(self._heads(jax.nn.silu(k))), v, state

  def gates(self, x):
    """x [B, L, d] -> theta, eta, alpha, each [B, L, H] float32 (zeros when switched off)."""
    if self.per_chunk_gates:
      b, l, d = x.shape
      first = x.reshape(b, l // self.chunk_size, self.chunk_size, d)[:, :, :1]
      x = jnp.broadcast_to(first, (b, l // self.chunk_size, self.chunk_size, d)).reshape(b, l, d)
    sig = lambda lin: jax.nn.sigmoid(lin(x).astype(jnp.float32))
    theta = self.max_lr * sig(self.theta)
    zeros = jnp.zeros_like(theta)
    eta = self.max_momentum * sig(self.eta) if self.use_momentum else zeros
    alpha = sig(self.alpha) if self.use_decay else zeros
    return theta, eta, alpha

  # ------------------------------------------------------------------------------ read/write

  def write_read(self, x_write, queries, state, streams=("k", "v")):
    """Writes x_write [B, L, d] token by token (chunked) and reads `queries` [B, L, H, D] after
    each token's write. Returns (reads [B, L, H, D] float32, new state)."""
    keys, values, state = self.keys_values(x_write, state, streams)
    theta, eta, alpha = self.gates(x_write)
    to_bh = lambda a: jnp.moveaxis(a, 1, 2)             # [B, L, H, ...] -> [B, H, L, ...]
    anchor = (tuple(w[...] for w in self.initial_weights) if self.forget_to_initial else None)
    reads, weights, momentum = nm_ops.batched_memory_forward(
        state["weights"], state["momentum"], to_bh(keys), to_bh(values), to_bh(queries),
        to_bh(theta), to_bh(eta), to_bh(alpha), chunk_size=self.chunk_size,
        remat=self.remat_chunks, max_grad_norm=self.max_grad_norm, anchor=anchor,
        unroll=self.chunk_unroll)
    return jnp.moveaxis(reads, 2, 1), dict(state, weights=weights, momentum=momentum)

  def read(self, queries, state):
    """M*(q): queries [B, L, H, D] read with the state's weights, no update."""
    reads = nm_ops.batched_memory_read(state["weights"], jnp.moveaxis(queries, 1, 2))
    return jnp.moveaxis(reads, 2, 1)

  def readout(self, reads, gate_input):
    """reads [B, L, H, D] -> W_O(RMSNorm_head(reads) * silu(gate_input W_G)) [B, L, d]."""
    b, l = reads.shape[:2]
    normed = self.out_norm(reads).reshape(b, l, -1).astype(self.dtype)
    return self.out(normed * jax.nn.silu(self.out_gate(gate_input)))

  def __call__(self, x, state):
    """The LMM as a sequence layer on x [B, L, d] (streams q, k, v). Returns (y [B, L, d], state)."""
    q, state = self.queries(x, state)
    reads, state = self.write_read(x, q, state)
    return self.readout(reads, x), state


class TitansLMM(nnx.Module):
  """`Titans (LMM)`: the neural memory alone as the sequence layer (no attention)."""

  STREAMS = ("q", "k", "v")

  def __init__(self, d_model, num_heads, opts, *, dtype, rngs):
    self.memory = NeuralMemory(d_model, num_heads, opts, dtype=dtype, rngs=rngs)

  def init_memory(self, batch: int):
    return self.memory.init_state(batch, self.STREAMS)

  def __call__(self, x, memory, *, positions, reset):
    del positions  # the memory is position-free; order enters through the recurrence
    memory = reset_memory(memory, self.init_memory(x.shape[0]), reset)
    return self.memory(x, memory)


def make_titans(model_cfg, rngs: nnx.Rngs):
  """The Titans layer named by model_cfg.titans.variant."""
  from longctx.layers import titans_arch  # noqa: F401  (the attention variants import this file)
  opts = model_cfg.titans
  common = dict(dtype=jnp.dtype(model_cfg.dtype), rngs=rngs)
  d, h = model_cfg.d_model, model_cfg.num_heads
  if opts.variant == "lmm":
    return TitansLMM(d, h, opts, **common)
  if opts.variant == "mac":
    return titans_arch.MemoryAsContext(d, h, opts, block_len=model_cfg.block_len,
                                       rope_theta=model_cfg.rope_theta, **common)
  if opts.variant in ("mag", "mal"):
    cls = titans_arch.MemoryAsGate if opts.variant == "mag" else titans_arch.MemoryAsLayer
    return cls(d, h, opts, block_len=model_cfg.block_len, rope_theta=model_cfg.rope_theta,
               **common)
  raise ValueError(f"model.titans.variant={opts.variant!r} is not one of {VARIANTS}")
