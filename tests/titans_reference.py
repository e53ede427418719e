"""float64 numpy transcriptions of Titans (arXiv 2501.00663) for the tests: the memory MLP with a
hand-written backward pass, the token-by-token update of eqs. 13-14 with gradients at the chunk-start
weights (Sec. 3.2), and the LMM / MAC layers written out step by step from a layer's weights.
Nothing here calls JAX: it is an independent reference, not a copy of longctx's code."""
import numpy as np


def silu(z):
  return z / (1.0 + np.exp(-z))


def dsilu(z):
  s = 1.0 / (1.0 + np.exp(-z))
  return s * (1.0 + z * (1.0 - s))


def sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def mlp(ws, x):
  """M(x; W) = x W_1 -> silu -> ... -> W_n."""
  h = x
  for i, w in enumerate(ws):
    h = h @ w
    if i < len(ws) - 1:
      h = silu(h)
  return h


def mlp_grad(ws, k, v):
  """grad_W ||M(k; W) - v||^2 by backpropagation written out; k, v [D]."""
  hs, zs, h = [k], [], k
  for i, w in enumerate(ws):
    z = h @ w
    zs.append(z)
    h = silu(z) if i < len(ws) - 1 else z
    hs.append(h)
  g = 2.0 * (hs[-1] - v)                      # dL/d(output)
  grads = [None] * len(ws)
  for i in reversed(range(len(ws))):
    if i < len(ws) - 1:
      g = g * dsilu(zs[i])                      # dL/dz_i from dL/dh_{i+1}
    grads[i] = np.outer(hs[i], g)
    g = g @ ws[i].T
  return grads


def memory_sequential(ws, ss, keys, values, queries, theta, eta, alpha, chunk, max_grad_norm=0.0,
                      anchor=None):
  """One example and head, token by token: the gradient of token t is taken at the weights of the
  start of its chunk (t - t mod chunk); S_t = eta_t S_{t-1} - theta_t grad; W_t = (1 - alpha_t)
  W_{t-1} + S_t (+ alpha_t anchor when an anchor is given); y_t = M(q_t; W_t). max_grad_norm > 0:
  grad is first rescaled to norm at most max_grad_norm (the norm over all layers).
  Returns (y [T, D], W, S)."""
  anchor = [np.zeros_like(np.asarray(w, np.float64)) for w in ws] if anchor is None else anchor
  ws = [np.array(w, np.float64) for w in ws]
  ss = [np.array(s, np.float64) for s in ss]
  ys = []
  for t in range(len(keys)):
    if t % chunk == 0:
      start = [w.copy() for w in ws]
    grads = mlp_grad(start, keys[t], values[t])
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    if max_grad_norm > 0 and norm > max_grad_norm:
      grads = [g * (max_grad_norm / norm) for g in grads]
    ss = [eta[t] * s - theta[t] * g for s, g in zip(ss, grads)]
    ws = [(1.0 - alpha[t]) * w + alpha[t] * a + s for w, a, s in zip(ws, anchor, ss)]
    ys.append(mlp(ws, queries[t]))
  return np.stack(ys), ws, ss


def delta_rule(s0, keys, values, queries, beta):
  """DeltaNet linear attention: S_t = S_{t-1} + beta k_t^T (v_t - k_t S_{t-1}); o_t = q_t S_t."""
  s = np.array(s0, np.float64)
  out = []
  for k, v, q in zip(keys, values, queries):
    s = s + beta * np.outer(k, v - k @ s)
    out.append(q @ s)
  return np.stack(out), s


# ------------------------------------------------------------------------------- layer pieces

def rmsnorm(x, scale, eps=1e-6):
  return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * scale


def l2norm(x, eps=1e-6):
  return x / np.sqrt(np.sum(x * x, axis=-1, keepdims=True) + eps)


def causal_conv(x, kernel):
  """Depthwise causal convolution over a whole stream x [T, C] from zeros; kernel [w, C]."""
  w = kernel.shape[0]
  padded = np.concatenate([np.zeros((w - 1, x.shape[1])), x])
  return sum(kernel[j] * padded[j:j + len(x)] for j in range(w))


def rope(x, positions, theta=10000.0):
  """Rotate-half RoPE on x [T, H, D] at integer positions [T]."""
  half = x.shape[-1] // 2
  out = np.empty_like(x)
  for i in range(half):
    angle = positions.astype(np.float64) * theta ** (-i / half)
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    a, b = x[..., i], x[..., i + half]
    out[..., i] = a * c - b * s
    out[..., i + half] = b * c + a * s
  return out


def to_numpy(tree):
  if isinstance(tree, dict):
    return {k: to_numpy(v) for k, v in tree.items()}
  return np.asarray(tree, np.float64)


class MemoryRef:
  """The neural memory of one example from a NeuralMemory's pure-dict weights `p`.

  Streams (whole sequences of inputs to a projection) are convolved from zero tails, exactly the
  state a fresh memory starts from."""

  def __init__(self, p, heads, chunk, max_lr, momentum=True, decay=True, conv=True,
               normalize_values=True, max_grad_norm=0.0, max_momentum=1.0, forget_to="zero"):
    self.p, self.h, self.chunk, self.max_lr = p, heads, chunk, max_lr
    self.forget_to = forget_to
    self.max_momentum = max_momentum
    self.max_grad_norm = max_grad_norm
    self.normalize_values = normalize_values
    self.momentum, self.decay, self.conv = momentum, decay, conv
    self.ws = [p["initial_weights"][i] for i in sorted(p["initial_weights"])]  # [H, Din, Dout]
    self.ss = [np.zeros_like(w) for w in self.ws]
    self.history = {}   # (stream, projection) -> every projected row so far

  def _proj(self, x, name, conv_name, stream):
    y = x @ self.p[name]["kernel"]
    if self.conv:  # convolve the whole stream so far, keep the new rows
      past = self.history.get((stream, name), np.zeros((0, y.shape[1])))
      self.history[(stream, name)] = np.concatenate([past, y])
      y = causal_conv(self.history[(stream, name)], self.p[conv_name])[len(past):]
    return silu(y).reshape(len(x), self.h, -1)

  def queries(self, x, stream="q"):
    return l2norm(self._proj(x, "query", "conv_q", stream))

  def keys_values(self, x, stream="kv"):
    v = self._proj(x, "value", "conv_v", stream)
    return l2norm(self._proj(x, "key", "conv_k", stream)), l2norm(v) if self.normalize_values else v

  def gates(self, x):
    lin = lambda n: x @ self.p[n]["kernel"] + self.p[n]["bias"]
    theta = self.max_lr * sigmoid(lin("theta"))
    eta = self.max_momentum * sigmoid(lin("eta")) if self.momentum else np.zeros_like(theta)
    alpha = sigmoid(lin("alpha")) if self.decay else np.zeros_like(theta)
    return theta, eta, alpha                                      # [T, H]

  def read(self, q):
    return np.stack([mlp([w[h] for w in self.ws], q[:, h]) for h in range(self.h)], axis=1)

  def write_read(self, k, v, q, theta, eta, alpha):
    """Writes tokens k, v [T, H, D] and reads q after each write; updates self.ws/ss."""
    out = []
    initial = [self.p["initial_weights"][i] for i in sorted(self.p["initial_weights"])]
    for h in range(self.h):
      anchor = [w[h] for w in initial] if self.forget_to == "initial" else None
      y, ws, ss = memory_sequential([w[h] for w in self.ws], [s[h] for s in self.ss], k[:, h],
                                    v[:, h], q[:, h], theta[:, h], eta[:, h], alpha[:, h],
                                    self.chunk, self.max_grad_norm, anchor)
      for i in range(len(ws)):
        self.ws[i] = self.ws[i].copy()
        self.ss[i] = self.ss[i].copy()
        self.ws[i][h], self.ss[i][h] = ws[i], ss[i]
      out.append(y)
    return np.stack(out, axis=1)

  def readout(self, reads, gate_input):
    t = len(reads)
    normed = rmsnorm(reads, self.p["out_norm"]["scale"]).reshape(t, -1)
    return (normed * silu(gate_input @ self.p["out_gate"]["kernel"])) @ self.p["out"]["kernel"]
