r"""Where FAM's extra step time goes: the attention and the feed-forward alone, at BSWA's and FAM's
shapes (issue 4, cost parity; stop 36 measured FAM 1.129x BSWA's step time on an H200 against
1.055x its FLOPs).

FAM processes F + L query rows against m L + F + L keys where BSWA has L rows against m L + L
keys. At block 1024, L_F 64 and m 3 that is 1088 x 4160 against 1024 x 4096: x1.079 the attention
FLOPs, x1.0625 the feed-forward's. A GPU matmul runs in tiles (commonly 128 x 128 or larger), so
1088 rows and 4160 keys may cost as 1152 and 4224 (x1.16). To tell the two apart this script times
(fwd + bwd, jitted, median of --repeats) the one-mask attention of longctx.ops.attention at:
  bswa     L rows,      m L + L keys
  fam      F + L rows,  m L + F + L keys (fam_len F)
  fam2x    2F + L rows, m L + 2F + L keys
  rows     F + L rows,  m L + L keys     (the extra rows alone)
  keys     L rows,      m L + F + L keys (the extra keys alone)
and the SwiGLU feed-forward on B L and B (F + L) rows. If `fam` costs about what `fam2x` costs, the
extra is tile quantisation, not FLOPs.

  python experiments/fam/attention_shapes.py                 # the gpu bench shape
  python experiments/fam/attention_shapes.py --block=128 --fam_len=8 --d_model=128 --mlp=512  # CPU check
Writes one JSON line per case to stdout (and --out).
"""
import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

from longctx.ops import attention as attn_ops
from longctx.ops.fam_mask import fam_attention_mask


def timed(fn, args, repeats):
  out = fn(*args)
  jax.block_until_ready(out)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def attention_case(batch, heads, head_dim, rows, keys, causal_len, repeats, key, mask=None):
  """fwd + bwd of the one-mask attention. mask [B, 1, rows, keys], or by default the first
  keys - causal_len keys visible to every row and the last causal_len keys causal for the last
  causal_len rows (BSWA's mask, and the FAM mask's shape of cost for the rows / keys cases)."""
  kq, kk, kv = jax.random.split(key, 3)
  q = jax.random.normal(kq, (batch, rows, heads, head_dim), jnp.float32)
  k = jax.random.normal(kk, (batch, keys, heads, head_dim), jnp.float32)
  v = jax.random.normal(kv, (batch, keys, heads, head_dim), jnp.float32)
  if mask is None:
    full = jnp.ones((rows, keys - causal_len), bool)
    causal = jnp.tril(jnp.ones((rows, causal_len), bool), k=causal_len - rows)
    mask = jnp.broadcast_to(jnp.concatenate([full, causal], 1)[None, None], (batch, 1, rows, keys))

  def loss(q, k, v, mask):
    return jnp.sum(attn_ops.dot_product_attention(q, k, v, mask))
  step = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
  return timed(step, (q, k, v, mask), repeats)


def swiglu_case(rows, d_model, mlp, repeats, key):
  kx, k1, k2, k3 = jax.random.split(key, 4)
  x = jax.random.normal(kx, (rows, d_model), jnp.float32)
  w_gate = jax.random.normal(k1, (d_model, mlp), jnp.float32) * d_model ** -0.5
  w_up = jax.random.normal(k2, (d_model, mlp), jnp.float32) * d_model ** -0.5
  w_down = jax.random.normal(k3, (mlp, d_model), jnp.float32) * mlp ** -0.5

  def loss(x, w_gate, w_up, w_down):
    return jnp.sum((jax.nn.silu(x @ w_gate) * (x @ w_up)) @ w_down)
  step = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))
  return timed(step, (x, w_gate, w_up, w_down), repeats)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--heads", type=int, default=8)
  parser.add_argument("--d_model", type=int, default=1024)
  parser.add_argument("--mlp", type=int, default=4096)
  parser.add_argument("--block", type=int, default=1024)
  parser.add_argument("--fam_len", type=int, default=64)
  parser.add_argument("--mem_blocks", type=int, default=3)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--out", default=None)
  flags = parser.parse_args()
  b, h, l, f, m = flags.batch, flags.heads, flags.block, flags.fam_len, flags.mem_blocks
  head_dim = flags.d_model // h
  cases = {  # name: (rows, keys)
      "bswa": (l, m * l + l), "fam": (f + l, m * l + f + l), "fam2x": (2 * f + l, m * l + 2 * f + l),
      "rows": (f + l, m * l + l), "keys": (l, m * l + f + l)}
  key = jax.random.key(0)
  results = []
  base = None
  for name, (rows, keys) in cases.items():
    # The fam and fam2x cases use the layer's own mask (longctx.ops.fam_mask, every cache slot
    # valid), so the timed attention is the one FAM runs; the others use the generic mask above.
    fam_rows = {"fam": f, "fam2x": 2 * f}.get(name)
    mask = None if fam_rows is None else fam_attention_mask(jnp.ones((b, m * l), bool), fam_rows, l)
    seconds = attention_case(b, h, head_dim, rows, keys, l, flags.repeats, key, mask)
    base = base or seconds
    results.append(dict(part="attention", case=name, rows=rows, keys=keys, seconds=seconds,
                        time_x_bswa=seconds / base, flops_x_bswa=rows * keys / cases["bswa"][0] /
                        cases["bswa"][1]))
  ffn_base = None
  for name, rows in (("bswa", l), ("fam", f + l), ("fam2x", 2 * f + l)):
    seconds = swiglu_case(b * rows, flags.d_model, flags.mlp, flags.repeats, key)
    ffn_base = ffn_base or seconds
    results.append(dict(part="swiglu", case=name, rows=b * rows, seconds=seconds,
                        time_x_bswa=seconds / ffn_base, flops_x_bswa=rows / l))
  meta = dict(jax=jax.__version__, device=str(jax.devices()[0]), flags=vars(flags))
  lines = [json.dumps(dict(r, **meta)) for r in results]
  print("\n".join(lines))
  for r in results:
    print(f"{r['part']:9s} {r['case']:6s} {r['rows']:6d} rows {r.get('keys', 0):6d} keys "
          f"{r['seconds'] * 1e3:8.2f} ms  time x{r['time_x_bswa']:.3f}  flops x{r['flops_x_bswa']:.3f}")
  if flags.out:
    with open(flags.out, "w") as fh:
      fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
