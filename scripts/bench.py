r"""Sequence-length scaling benchmark of the decoder: compile time, throughput, memory, FLOP/s.

  python scripts/bench.py --config=configs/bench/decoder.py:cpu
  python scripts/bench.py --config=configs/bench/decoder.py:cpu --attention=infini,bswa,xl,full \
      --out bench_out/bench.json
  python scripts/bench.py --config=configs/bench/decoder.py:smoke --lengths=256 --repeats=1  # quick
  python scripts/bench.py --report bench_out/bench.json  # re-print the tables of an earlier run

For every (attention, length) a FRESH child process (this script with --_child_out, JAX_PLATFORMS=cpu,
no persistent compilation cache) measures:
  - compile time of the training step: wall time of jit(...).lower(...) + .compile() (and the two
    parts separately), so nothing is cached from an earlier length;
  - training tokens/s: one step = jax.value_and_grad(longctx.models.scan.mean_loss) + an optax.adamw
    update, jitted with the (params, opt_state) state donated; one warm-up step, then `--repeats`
    timed steps (each ended by jax.block_until_ready); the MEDIAN step time is reported;
  - forward tokens/s: longctx.models.scan.run_blocks under jit, same warm-up / median protocol;
  - memory: the child's peak RSS (resource.getrusage(RUSAGE_SELF).ru_maxrss, read at the end of the
    model measurements; it includes the JAX runtime and the compiler's own memory, so the baseline
    RSS after setup is recorded too) and XLA's buffer-assignment estimate from
    `compiled.memory_analysis()`: argument + output + temp bytes (all fields the installed jax
    returns are stored in the JSON; with donation `alias_size_in_bytes` of the outputs reuse the
    argument buffers, so arg + out + temp counts the optimizer state twice);
  - the machine's float32 matmul peak, measured in the same child AFTER the model (so its buffers do
    not enter the model's peak RSS), under the same background load: jit(a @ b) for [n, n] float32
    (n = bench.matmul_size, 2048), GFLOP/s = 2 n^3 / median time.
The parent records os.getloadavg() before and after each child, the CPU count, and an estimate of
the CPU used by OTHER processes during the child (busy time from /proc/stat minus the child's own
CPU time, in cores). The child's own threads count in the load average after it.

Model FLOPs (no recompute: jax.checkpoint re-runs the forward pass inside the backward pass, which
costs real time but is NOT counted; the figure is an MFU-style "useful" FLOP rate). Per token:
  N_mm       = num_layers * (4 d^2 + 3 d f) + d V        matmul parameters touched (q, k, v, out;
                                                          SwiGLU gate, up, down; LM head; the
                                                          embedding gather is not a matmul)
  keys_seen  = T / 2                                      full (causal, average over positions)
             = mem_blocks * L + L / 2                     bswa, xl (cache + causal block)
             = L / 2                                      infini (causal block)
  attn_fwd   = num_layers * 4 * keys_seen * d             q k^T (2 keys d) + probs v (2 keys d)
  mem_fwd    = num_layers * 2 * 2 * D * d                 infini only: retrieval sigma(q) M and
                                                          update sigma(k)^T v, 2 D d each (D =
                                                          head dim; 'linear_delta' adds a third)
  memorizing: keys_seen as xl; mem_fwd = n_knn_layers * 2 * (capacity + top_k) * d  (scores against
             every memory slot, then the top_k values)
  compressive: keys_seen = xl's + compressed_len; mem_fwd = layers * (4 d^2 + 4 (L + L/c) d)
             (two [c d, d] convolutions per evicted token; the two reconstruction attentions)
  rmt:       each block runs L + 2m rows: keys_seen = (L + 2m)^2 / (2 L) per real token and
             mem_fwd = 2 (2m / L) (N_mm - d V) (the memory rows' matmuls, no LM head)
  train      = 6 N_mm + 3 attn_fwd + 3 mem_fwd            (backward = 2 x forward)
             = 6 N_mm + 3*4*keys_seen*d*layers + 3*2*2*D*d*layers
  forward    = 2 N_mm + attn_fwd + mem_fwd
with d = d_model, f = mlp_dim, V = vocab_size, L = block_len, D = d_model / num_heads.
model GFLOP/s = train FLOPs/token * train tokens/s; fraction = model GFLOP/s / matmul GFLOP/s.

Output: one markdown table per attention (ratios are against 4K, or the shortest length measured
when 4K is not), a table of the bars (64K vs 4K), and every raw figure in --out (JSON, rewritten
after each child so a partial run keeps what it measured).

Guards (the machine is shared): the child compiles first and skips running when XLA's estimate plus
the RSS it already has exceeds the memory budget (--mem_budget_gb, also capped by 80% of the memory
available when the child starts); the parent kills a child whose RSS passes 1.1 x the budget or
that runs past --child_timeout_s; `full` attention is skipped above bench.full_max_len (16K).
"""
import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
  sys.path.insert(0, _REPO)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

_DEFAULT_CONFIG = "configs/bench/decoder.py:cpu"
_MiB = 2 ** 20
_GiB = 2 ** 30


# ----------------------------------------------------------------------------------------------
# Config loading and flags.

def load_config(spec: str):
  """'path/to/file.py:arg' -> get_config(arg) (ml_collections config_flags semantics)."""
  path, arg = spec, None
  if ".py:" in spec:
    path, arg = spec.split(".py:", 1)
    path += ".py"
  if not os.path.exists(path) and os.path.exists(os.path.join(_REPO, path)):
    path = os.path.join(_REPO, path)
  if not os.path.exists(path):
    raise ValueError(f"--config: no config file {path!r}")
  module_spec = importlib.util.spec_from_file_location("_bench_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg is not None else module.get_config()


def parse_length(text: str) -> int:
  text = text.strip().upper()
  if text.endswith("K"):
    return int(text[:-1]) * 1024
  if text.endswith("M"):
    return int(text[:-1]) * 1024 * 1024
  return int(text)


def parse_flags(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default=_DEFAULT_CONFIG,
                 help="config file and argument, 'file.py:arg' (default %(default)s)")
  p.add_argument("--attention", default=None,
                 help="comma list of attentions (default: the config's bench.attentions)")
  p.add_argument("--lengths", default=None,
                 help="comma list of sequence lengths, e.g. 4K,8K,65536 (default: bench.lengths)")
  p.add_argument("--batch", type=int, default=None, help="batch size (default: bench.batch)")
  p.add_argument("--repeats", type=int, default=None,
                 help="timed steps after one warm-up step, median reported (default: bench.repeats)")
  p.add_argument("--remat_policy", default=None, help="override model.remat_policy")
  p.add_argument("--out", default="bench_out/bench.json", help="JSON with all raw figures")
  p.add_argument("--full_max_len", type=int, default=None,
                 help="skip `full` attention above this length (default: bench.full_max_len)")
  p.add_argument("--mem_budget_gb", type=float, default=10.0,
                 help="per-child memory budget in GiB (XLA estimate guard and RSS watchdog); "
                      "capped by 80%% of available memory when the child starts")
  p.add_argument("--child_timeout_s", type=float, default=1800.0)
  p.add_argument("--matmul_size", type=int, default=None)
  p.add_argument("--report", default=None,
                 help="print the tables of an existing --out JSON (no measurement) and exit")
  # Internal: run one measurement and write its JSON here.
  p.add_argument("--_child_out", default=None, help=argparse.SUPPRESS)
  p.add_argument("--_mem_budget_bytes", type=int, default=None, help=argparse.SUPPRESS)
  return p.parse_args(argv)


def resolve(flags, cfg):
  """Flags over the config's bench defaults; validates every (attention, length)."""
  from longctx import config as config_lib
  from longctx.layers import ATTENTION_NAMES
  bench = cfg.bench
  attentions = ([a.strip() for a in flags.attention.split(",") if a.strip()]
                if flags.attention else list(bench.attentions))
  lengths = ([parse_length(x) for x in flags.lengths.split(",") if x.strip()]
             if flags.lengths else list(bench.lengths))
  for a in attentions:
    if a not in ATTENTION_NAMES:
      raise ValueError(f"--attention={a!r} is not one of {ATTENTION_NAMES}")
  if flags.remat_policy is not None:
    cfg.model.remat_policy = flags.remat_policy
  for a in attentions:
    cfg.model.attention = a
    config_lib.validate_model(cfg.model)
    for t in lengths:
      config_lib.validate_seq_len(cfg.model, t, "--lengths")
  opts = dict(
      attentions=attentions, lengths=lengths,
      batch=flags.batch if flags.batch is not None else bench.batch,
      repeats=flags.repeats if flags.repeats is not None else bench.repeats,
      full_max_len=flags.full_max_len if flags.full_max_len is not None else bench.full_max_len,
      matmul_size=flags.matmul_size if flags.matmul_size is not None else bench.matmul_size,
      matmul_repeats=bench.matmul_repeats)
  if opts["batch"] <= 0 or opts["repeats"] <= 0:
    raise ValueError("--batch and --repeats must be positive")
  return opts


# ----------------------------------------------------------------------------------------------
# Model FLOPs (see the module docstring).

def model_flops_per_token(model_cfg, seq_len: int) -> dict:
  d, f, v = model_cfg.d_model, model_cfg.mlp_dim, model_cfg.vocab_size
  layers, heads = model_cfg.num_layers, model_cfg.num_heads
  head_dim = d // heads
  block = seq_len if model_cfg.attention == "full" else model_cfg.block_len
  n_mm = layers * (4 * d * d + 3 * d * f) + d * v
  name = model_cfg.attention
  if name == "full":
    keys_seen = seq_len / 2
  elif name == "bswa":
    keys_seen = model_cfg.bswa.mem_blocks * block + block / 2
  elif name == "xl":
    keys_seen = model_cfg.xl.mem_blocks * block + block / 2
  elif name == "infini":
    keys_seen = block / 2
  elif name == "fam":
    # Block queries: m blocks + the F FAM rows + half the block; the F FAM queries of a block see
    # F + L keys each, spread over the block's L tokens.
    fam_len = model_cfg.fam.fam_len
    keys_seen = (model_cfg.fam.mem_blocks * block + fam_len + block / 2
                 + fam_len * (fam_len + block) / block)
  elif name == "titans":
    t = model_cfg.titans
    keys_seen = {"lmm": 0.0, "mac": t.persistent_tokens + block,
                 "mag": t.persistent_tokens + t.window_blocks * block + block / 2,
                 "mal": t.persistent_tokens + t.window_blocks * block + block / 2}[t.variant]
  elif name == "memorizing":
    keys_seen = model_cfg.xl.mem_blocks * block + block / 2
  elif name == "compressive":
    keys_seen = model_cfg.xl.mem_blocks * block + model_cfg.compressive.compressed_len + block / 2
  elif name == "rmt":
    keys_seen = (block + 2 * model_cfg.rmt.num_tokens) ** 2 / (2 * block)
  else:
    raise ValueError(name)
  attn_fwd = layers * 4 * keys_seen * d
  mem_fwd = 0.0
  if name == "infini":
    passes = 3 if model_cfg.infini.update_rule == "linear_delta" else 2
    mem_fwd = layers * passes * 2 * head_dim * d
  if name == "fam":  # the F FAM rows through every layer's projections and MLP, per block token
    # (the prompt's pass up the stack, F rows per block unbatched, is not counted)
    mem_fwd = 2 * layers * (4 * d * d + 3 * d * f) * model_cfg.fam.fam_len / block
  if name == "titans":
    t = model_cfg.titans
    # Memory projections: q, k, v, output gate, output (+ MAC's read-again query and the
    # retrieved tokens' keys/values, + the (x) gate's projection); `lmm` has no attention.
    extra = {"lmm": 5 - 4, "mac": 5 + 1 + 2 + 1, "mag": 5 + 1, "mal": 5}[t.variant]
    n_mm += layers * extra * d * d
    hidden = head_dim * t.memory_expansion
    dims = [head_dim] + [hidden] * (t.memory_depth - 1) + [head_dim]
    weights = sum(i * o for i, o in zip(dims[:-1], dims[1:]))   # |W| per head
    # Per token and head: gradient (~3 forward passes of 2|W|), two scans (~2 x 2|W| each),
    # the read (2|W|): ~14 |W|; MAC also reads once more for retrieval.
    reads = 2 if t.variant == "mac" else 1
    mem_fwd = layers * model_cfg.num_heads * weights * (12 + 2 * reads)
  elif name == "memorizing":
    mc = model_cfg.memorizing
    knn_layers = len(mc.layers) or layers
    mem_fwd = knn_layers * 2 * (mc.capacity + mc.top_k) * d
  elif name == "compressive":
    rate = model_cfg.compressive.rate
    mem_fwd = layers * (4 * d * d + 4 * (block + block / rate) * d)
  elif name == "rmt":
    mem_fwd = 2 * (2 * model_cfg.rmt.num_tokens / block) * (n_mm - d * v)
  return dict(matmul_params=n_mm, keys_seen=keys_seen, attn_fwd=attn_fwd, mem_fwd=mem_fwd,
              forward=2 * n_mm + attn_fwd + mem_fwd, train=6 * n_mm + 3 * attn_fwd + 3 * mem_fwd)


# ----------------------------------------------------------------------------------------------
# The child: one (attention, length) measurement.

def _maxrss_bytes() -> int:
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return rss if sys.platform == "darwin" else rss * 1024  # Linux: KiB


def _memory_stats(compiled) -> dict:
  """Every *_in_bytes attribute of compiled.memory_analysis() (names differ across jax versions)."""
  stats = compiled.memory_analysis()
  if stats is None:
    return {}
  if isinstance(stats, (list, tuple)):
    stats = stats[0]
  out = {}
  for name in dir(stats):
    if name.startswith("_") or not name.endswith("_in_bytes"):
      continue
    value = getattr(stats, name)
    if isinstance(value, int):
      out[name] = value
  total = sum(out.get(k, 0) for k in ("argument_size_in_bytes", "output_size_in_bytes",
                                      "temp_size_in_bytes"))
  out["arg_out_temp_bytes"] = total
  return out


def _cost_flops(compiled):
  try:
    cost = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  return float(cost["flops"]) if cost and "flops" in cost else None


def _time_calls(fn, repeats: int):
  """One warm-up call, then `repeats` timed calls; fn() must block until its result is ready.

  Returns (warm-up wall s, [wall s], [process CPU s]) (CPU time: all threads of this process).
  """
  t0 = time.perf_counter()
  fn()
  warmup = time.perf_counter() - t0
  times, cpu_times = [], []
  for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    times.append(time.perf_counter() - t0)
    cpu_times.append(time.process_time() - c0)
  return warmup, times, cpu_times


def child_main(flags):
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  from flax import nnx
  from longctx import config as config_lib
  from longctx.models import scan
  from longctx.models.decoder import Decoder

  t_start = time.perf_counter()
  cfg = load_config(flags.config)
  opts = resolve(flags, cfg)
  (attention,), (seq_len,) = opts["attentions"], opts["lengths"]
  cfg.model.attention = attention
  config_lib.validate_model(cfg.model)
  model_cfg = cfg.model
  batch_size, repeats = opts["batch"], opts["repeats"]
  budget = flags._mem_budget_bytes or int(flags.mem_budget_gb * _GiB)
  res = dict(attention=attention, length=seq_len, batch=batch_size, repeats=repeats,
             remat_policy=model_cfg.remat_policy, status="ok", jax_version=jax.__version__,
             backend=jax.default_backend(), devices=[str(d) for d in jax.devices()],
             mem_budget_bytes=budget)

  def write():
    with open(flags._child_out, "w") as f:
      json.dump(res, f, indent=1)

  model = Decoder(model_cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  memory = model.init_memory(batch_size)
  tx = optax.adamw(1e-4)
  opt_state = tx.init(params)
  res["num_params"] = int(sum(x.size for x in jax.tree.leaves(params)))
  # The scan carry (every layer's memory): with jax.checkpoint around the block step, the backward
  # pass keeps one carry per block, so num_blocks * carry_bytes is the part that grows with T.
  res["carry_bytes"] = int(sum(x.nbytes for x in jax.tree.leaves(memory)))
  res["num_blocks"] = seq_len // (seq_len if attention == "full" else model_cfg.block_len)
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, model_cfg.vocab_size, (batch_size, seq_len + 1), dtype=np.int32)
  batch = {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:])}
  state = (params, opt_state)
  jax.block_until_ready((state, memory, batch))
  res["rss_after_setup_bytes"] = _maxrss_bytes()
  res["setup_s"] = time.perf_counter() - t_start

  def train_step(state, memory, batch):
    params, opt_state = state
    (loss, _), grads = jax.value_and_grad(scan.mean_loss, has_aux=True)(
        params, graphdef, memory, batch, model_cfg)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  def forward(params, memory, batch):
    return scan.run_blocks(graphdef, params, memory, batch, model_cfg)

  # --- training step: compile (timed), memory analysis, guard, run.
  t0, c0 = time.perf_counter(), time.process_time()
  lowered = jax.jit(train_step, donate_argnums=0).lower(state, memory, batch)
  t1 = time.perf_counter()
  train_compiled = lowered.compile()
  t2, c2 = time.perf_counter(), time.process_time()
  res.update(train_lower_s=t1 - t0, train_xla_compile_s=t2 - t1, compile_s=t2 - t0,
             compile_cpu_s=c2 - c0)
  res["train_memory_analysis"] = _memory_stats(train_compiled)
  # XLA's own count; it counts a lax.scan body ONCE (not x number of blocks) and includes the
  # recompute, so it is not the model FLOPs; kept for reference only.
  res["train_xla_cost_flops_scan_body_once"] = _cost_flops(train_compiled)
  res["rss_after_compile_bytes"] = _maxrss_bytes()
  del lowered
  xla_bytes = res["train_memory_analysis"].get("arg_out_temp_bytes", 0)
  if xla_bytes + res["rss_after_compile_bytes"] > budget:
    res["status"] = "skipped"
    res["reason"] = (f"XLA estimate {xla_bytes / _GiB:.2f} GiB + RSS "
                     f"{res['rss_after_compile_bytes'] / _GiB:.2f} GiB > budget {budget / _GiB:.2f} GiB")
    res["rss_peak_bytes"] = _maxrss_bytes()
    write()
    return

  holder = {"state": state}

  def run_train():
    holder["state"], loss = train_compiled(holder["state"], memory, batch)
    jax.block_until_ready((holder["state"], loss))
    holder["loss"] = float(loss)

  warm, times, cpu_times = _time_calls(run_train, repeats)
  step_s = statistics.median(times)
  res.update(train_warmup_s=warm, train_step_times_s=times, train_step_s=step_s,
             train_step_cpu_times_s=cpu_times, train_step_cpu_s=statistics.median(cpu_times),
             train_tokens_per_s=batch_size * seq_len / step_s, train_loss=holder["loss"])
  res["rss_after_train_bytes"] = _maxrss_bytes()
  write()

  # --- forward only.
  params = holder["state"][0]
  t0 = time.perf_counter()
  fwd_compiled = jax.jit(forward).lower(params, memory, batch).compile()
  res["fwd_compile_s"] = time.perf_counter() - t0
  res["fwd_memory_analysis"] = _memory_stats(fwd_compiled)

  def run_fwd():
    jax.block_until_ready(fwd_compiled(params, memory, batch))

  warm, times, cpu_times = _time_calls(run_fwd, repeats)
  res.update(fwd_warmup_s=warm, fwd_step_times_s=times, fwd_step_s=statistics.median(times),
             fwd_step_cpu_s=statistics.median(cpu_times),
             fwd_tokens_per_s=batch_size * seq_len / statistics.median(times))
  res["rss_peak_bytes"] = _maxrss_bytes()  # the child's peak: everything above, nothing below.
  ru = resource.getrusage(resource.RUSAGE_SELF)
  res["model_cpu_s"] = ru.ru_utime + ru.ru_stime
  res["model_wall_s"] = time.perf_counter() - t_start
  write()

  # --- the machine's float32 matmul peak, same process, same load, after the model.
  del train_compiled, fwd_compiled, holder, params
  n = opts["matmul_size"]
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  mm = jax.jit(lambda a, b: a @ b).lower(a, b).compile()
  jax.block_until_ready(mm(a, b))
  _, times, _ = _time_calls(lambda: jax.block_until_ready(mm(a, b)), opts["matmul_repeats"])
  res.update(matmul_size=n, matmul_times_s=times,
             matmul_gflops=2 * n ** 3 / statistics.median(times) / 1e9,
             matmul_gflops_best=2 * n ** 3 / min(times) / 1e9)
  write()


# ----------------------------------------------------------------------------------------------
# The parent: one child per (attention, length), tables, JSON.

def _cpu_busy_s():
  try:
    import psutil
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)
  except Exception:  # pylint: disable=broad-except
    return None


def _available_bytes():
  try:
    import psutil
    return psutil.virtual_memory().available
  except Exception:  # pylint: disable=broad-except
    return None


def run_child(flags, attention, length, opts):
  """Runs one measurement in a fresh process; returns its result dict plus load figures."""
  budget = int(flags.mem_budget_gb * _GiB)
  available = _available_bytes()
  if available is not None:
    budget = min(budget, int(0.8 * available))
  fd, out_path = tempfile.mkstemp(prefix="bench_child_", suffix=".json")
  os.close(fd)
  cmd = [sys.executable, os.path.abspath(__file__), f"--config={flags.config}",
         f"--attention={attention}", f"--lengths={length}", f"--batch={opts['batch']}",
         f"--repeats={opts['repeats']}", f"--matmul_size={opts['matmul_size']}",
         f"--_child_out={out_path}", f"--_mem_budget_bytes={budget}"]
  if flags.remat_policy is not None:
    cmd.append(f"--remat_policy={flags.remat_policy}")
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_ENABLE_COMPILATION_CACHE="false",
             PYTHONPATH=os.pathsep.join(filter(None, [_REPO, os.environ.get("PYTHONPATH")])))
  env.pop("JAX_COMPILATION_CACHE_DIR", None)

  load_before = os.getloadavg()
  busy_before = _cpu_busy_s()
  ru_before = resource.getrusage(resource.RUSAGE_CHILDREN)
  t0 = time.perf_counter()
  log = tempfile.TemporaryFile(mode="w+")
  proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())
  killed, watch_rss = None, 0
  try:
    import psutil
    ps = psutil.Process(proc.pid)
  except Exception:  # pylint: disable=broad-except
    ps = None
  while proc.poll() is None:
    time.sleep(0.2)
    if ps is not None:
      try:
        watch_rss = max(watch_rss, ps.memory_info().rss)
      except Exception:  # pylint: disable=broad-except
        pass
    if watch_rss > 1.1 * budget:
      killed = f"RSS {watch_rss / _GiB:.2f} GiB > 1.1 x budget {budget / _GiB:.2f} GiB"
    elif time.perf_counter() - t0 > flags.child_timeout_s:
      killed = f"ran past --child_timeout_s={flags.child_timeout_s}"
    if killed:
      proc.kill()  # only the child this function started
      proc.wait()
      break
  wall = time.perf_counter() - t0
  ru_after = resource.getrusage(resource.RUSAGE_CHILDREN)
  busy_after = _cpu_busy_s()
  load_after = os.getloadavg()

  res = dict(attention=attention, length=length)
  try:
    with open(out_path) as f:
      res = json.load(f)
  except (OSError, ValueError):
    pass
  finally:
    os.unlink(out_path)
  log.seek(0)
  output = log.read()
  log.close()
  if killed:
    res["status"] = "killed"
    res["reason"] = killed
  elif proc.returncode != 0:
    res["status"] = "error"
    res["reason"] = f"exit code {proc.returncode}"
    res["child_output_tail"] = output[-4000:]
  elif "matmul_gflops" not in res and res.get("status") == "ok":
    res["status"] = "error"
    res["reason"] = "child wrote no complete result"
    res["child_output_tail"] = output[-4000:]
  child_cpu = (ru_after.ru_utime + ru_after.ru_stime) - (ru_before.ru_utime + ru_before.ru_stime)
  res.update(child_wall_s=wall, child_cpu_s=child_cpu, cpu_count=os.cpu_count(),
             loadavg_before=list(load_before), loadavg_after=list(load_after),
             watchdog_max_rss_bytes=watch_rss)
  if busy_before is not None and busy_after is not None and wall > 0:
    res["other_procs_cpu_cores"] = max(0.0, (busy_after - busy_before - child_cpu) / wall)
  return res


def _ratio(x, ref):
  return x / ref if x is not None and ref else None


def add_derived(results, model_cfg_by_attention):
  """Model FLOP figures and ratios against 4K (or the shortest ok length) per attention."""
  for r in results:
    if r.get("status") != "ok":
      continue
    flops = model_flops_per_token(model_cfg_by_attention[r["attention"]], r["length"])
    r["model_flops_per_token"] = flops
    r["train_model_gflops"] = flops["train"] * r["train_tokens_per_s"] / 1e9
    r["fwd_model_gflops"] = flops["forward"] * r["fwd_tokens_per_s"] / 1e9
    r["train_time_per_token_s"] = r["train_step_s"] / (r["batch"] * r["length"])
    r["fwd_time_per_token_s"] = r["fwd_step_s"] / (r["batch"] * r["length"])
    r["fraction_of_matmul_peak"] = r["train_model_gflops"] / r["matmul_gflops"]
    r["xla_train_bytes"] = r["train_memory_analysis"]["arg_out_temp_bytes"]
  ok_all = [r for r in results if r.get("status") == "ok"]
  if ok_all:
    # The best matmul rate measured in this run (each child's median under its own load).
    run_peak = max(r["matmul_gflops"] for r in ok_all)
    for r in ok_all:
      r["run_matmul_gflops"] = run_peak
      r["fraction_of_run_matmul_peak"] = r["train_model_gflops"] / run_peak
  for attention in model_cfg_by_attention:
    ok = [r for r in results if r["attention"] == attention and r.get("status") == "ok"]
    if not ok:
      continue
    ref = next((r for r in ok if r["length"] == 4096), min(ok, key=lambda r: r["length"]))
    for r in ok:
      r["ref_length"] = ref["length"]
      r["ratios"] = dict(
          train_time_per_token=_ratio(r["train_time_per_token_s"], ref["train_time_per_token_s"]),
          fwd_time_per_token=_ratio(r["fwd_time_per_token_s"], ref["fwd_time_per_token_s"]),
          train_cpu_time_per_token=_ratio(r["train_step_cpu_s"] / r["length"],
                                          ref["train_step_cpu_s"] / ref["length"]),
          compile=_ratio(r["compile_s"], ref["compile_s"]),
          compile_cpu=_ratio(r["compile_cpu_s"], ref["compile_cpu_s"]),
          rss_peak=_ratio(r["rss_peak_bytes"], ref["rss_peak_bytes"]),
          xla_train=_ratio(r["xla_train_bytes"], ref["xla_train_bytes"]),
          xla_train_temp=_ratio(r["train_memory_analysis"].get("temp_size_in_bytes"),
                                ref["train_memory_analysis"].get("temp_size_in_bytes")))


def _fmt_len(t):
  return f"{t // 1024}K" if t % 1024 == 0 else str(t)


def _f(x, spec):
  return "-" if x is None else format(x, spec)


def tables(results, attentions):
  lines = []
  for attention in attentions:
    rows = [r for r in results if r["attention"] == attention]
    if not rows:
      continue
    ref = next((r.get("ref_length") for r in rows if r.get("ref_length")), None)
    vs = _fmt_len(ref) if ref else "4K"
    lines += [f"\n### {attention}\n",
              f"| length | compile s (CPU s) | train tok/s | fwd tok/s | time/token x{vs} | compile x{vs} "
              f"| peak RSS MiB (x{vs}) | XLA arg+out+temp MiB (x{vs}) | model GFLOP/s "
              f"| matmul GFLOP/s | % of matmul peak | load 1m before/after (other CPU) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
      load = (f"{r['loadavg_before'][0]:.2f}/{r['loadavg_after'][0]:.2f} "
              f"({_f(r.get('other_procs_cpu_cores'), '.2f')} of {r['cpu_count']})"
              if "loadavg_before" in r else "-")
      if r.get("status") != "ok":
        lines.append(f"| {_fmt_len(r['length'])} | {r.get('status')}: {r.get('reason', '')} "
                     + "| " * 10 + f"{load} |")
        continue
      q = r["ratios"]
      lines.append(
          f"| {_fmt_len(r['length'])} | {r['compile_s']:.1f} ({r['compile_cpu_s']:.1f}) "
          f"| {r['train_tokens_per_s']:,.0f} "
          f"| {r['fwd_tokens_per_s']:,.0f} | {_f(q['train_time_per_token'], '.2f')} "
          f"| {_f(q['compile'], '.2f')} "
          f"| {r['rss_peak_bytes'] / _MiB:,.0f} ({_f(q['rss_peak'], '.2f')}) "
          f"| {r['xla_train_bytes'] / _MiB:,.0f} ({_f(q['xla_train'], '.2f')}) "
          f"| {r['train_model_gflops']:.1f} | {r['matmul_gflops']:.1f} "
          f"| {100 * r['fraction_of_matmul_peak']:.1f}% | {load} |")
  return "\n".join(lines)


def bars(results, attentions):
  """64K vs 4K (or longest vs reference) against the issue's bars."""
  lines = ["\n### bars (longest length vs reference)\n",
           "| attention | lengths | compile x (<=1.2) | compile CPU x | time/token x (<=1.15) "
           "| CPU time/token x | peak RSS x (<=1.25) | XLA mem x (<=1.25) "
           "| % of matmul peak (>=40%): median [min-max] over lengths | % of run's best matmul |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
  out = {}
  for attention in attentions:
    ok = [r for r in results if r["attention"] == attention and r.get("status") == "ok"]
    if len(ok) < 2:
      continue
    last = max(ok, key=lambda r: r["length"])
    q = last["ratios"]
    fracs = [r["fraction_of_matmul_peak"] for r in ok]
    frac = statistics.median(fracs)
    run_frac = statistics.median(r["fraction_of_run_matmul_peak"] for r in ok)
    mark = lambda x, bar: "-" if x is None else f"{x:.2f} {'ok' if x <= bar else 'FAIL'}"
    out[attention] = dict(ref_length=last["ref_length"], length=last["length"],
                          compile=q["compile"], compile_cpu=q["compile_cpu"],
                          time_per_token=q["train_time_per_token"],
                          cpu_time_per_token=q["train_cpu_time_per_token"],
                          rss_peak=q["rss_peak"], xla_train=q["xla_train"],
                          median_fraction_of_matmul_peak=frac,
                          min_fraction_of_matmul_peak=min(fracs),
                          max_fraction_of_matmul_peak=max(fracs),
                          median_fraction_of_run_matmul_peak=run_frac,
                          run_matmul_gflops=ok[0]["run_matmul_gflops"])
    lines.append(f"| {attention} | {_fmt_len(last['length'])} vs {_fmt_len(last['ref_length'])} "
                 f"| {mark(q['compile'], 1.2)} | {_f(q['compile_cpu'], '.2f')} "
                 f"| {mark(q['train_time_per_token'], 1.15)} "
                 f"| {_f(q['train_cpu_time_per_token'], '.2f')} "
                 f"| {mark(q['rss_peak'], 1.25)} | {mark(q['xla_train'], 1.25)} "
                 f"| {100 * frac:.1f}% [{100 * min(fracs):.0f}-{100 * max(fracs):.0f}%] "
                 f"{'ok' if frac >= 0.4 else 'FAIL'} "
                 f"| {100 * run_frac:.1f}% of {ok[0]['run_matmul_gflops']:.0f} GFLOP/s |")
  return "\n".join(lines), out


def memory_growth(results, attentions):
  """XLA temp bytes beside the scan carries a training step saves for backprop (num_blocks x carry)."""
  lines = ["\n### training-step memory vs the saved scan carries\n",
           "| attention | length | blocks | carry KiB/block | XLA temp MiB | blocks x carry MiB "
           "| temp - blocks x carry MiB | XLA args MiB |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for r in results:
    if r["attention"] not in attentions or "train_memory_analysis" not in r:
      continue
    m = r["train_memory_analysis"]
    saved = r["num_blocks"] * r["carry_bytes"]
    lines.append(f"| {r['attention']} | {_fmt_len(r['length'])} | {r['num_blocks']} "
                 f"| {r['carry_bytes'] / 1024:,.0f} | {m['temp_size_in_bytes'] / _MiB:,.1f} "
                 f"| {saved / _MiB:,.1f} | {(m['temp_size_in_bytes'] - saved) / _MiB:,.1f} "
                 f"| {m['argument_size_in_bytes'] / _MiB:,.1f} |")
  return "\n".join(lines)


def parent_main(flags):
  cfg = load_config(flags.config)
  opts = resolve(flags, cfg)
  model_cfgs = {}
  for attention in opts["attentions"]:
    model_cfgs[attention] = cfg.model.copy_and_resolve_references()
    model_cfgs[attention].attention = attention
  out_dir = os.path.dirname(os.path.abspath(flags.out))
  os.makedirs(out_dir, exist_ok=True)
  meta = dict(argv=sys.argv, config=flags.config, options=opts, cpu_count=os.cpu_count(),
              platform=platform.platform(), python=sys.version.split()[0],
              started=time.strftime("%Y-%m-%d %H:%M:%S"), mem_budget_gb=flags.mem_budget_gb,
              config_dict=json.loads(cfg.to_json()), model_flops_formula=(
                  "train/token = 6*N_mm + 3*4*keys_seen*d*layers (+ infini 3*2*2*D*d*layers); "
                  "N_mm = layers*(4d^2 + 3*d*mlp) + d*vocab; keys_seen: full T/2, bswa/xl "
                  "mem_blocks*L + L/2, infini L/2; no recompute counted"))
  results = []

  def save():
    add_derived(results, model_cfgs)
    _, bar_figures = bars(results, opts["attentions"])
    with open(flags.out, "w") as f:
      json.dump(dict(meta=meta, results=results, bars=bar_figures), f, indent=1)

  print(f"# bench: {flags.config}  attention={','.join(opts['attentions'])}  "
        f"lengths={','.join(map(_fmt_len, opts['lengths']))}  batch={opts['batch']}  "
        f"repeats={opts['repeats']}  remat={cfg.model.remat_policy}  cpus={os.cpu_count()}",
        flush=True)
  for attention in opts["attentions"]:
    for length in opts["lengths"]:
      if attention == "full" and length > opts["full_max_len"]:
        results.append(dict(attention=attention, length=length, status="skipped",
                            reason=f"full attention above full_max_len={opts['full_max_len']}"))
        continue
      r = run_child(flags, attention, length, opts)
      results.append(r)
      save()
      summary = (f"compile {r['compile_s']:.1f}s ({r['compile_cpu_s']:.1f} CPU s) train {r['train_tokens_per_s']:,.0f} tok/s "
                 f"fwd {r['fwd_tokens_per_s']:,.0f} tok/s peak RSS {r['rss_peak_bytes'] / _MiB:,.0f} "
                 f"MiB matmul {r['matmul_gflops']:.1f} GFLOP/s"
                 if r.get("status") == "ok" else f"{r.get('status')}: {r.get('reason')}")
      print(f"  {attention:6s} {_fmt_len(length):>4s}: {summary}  "
            f"[{r['child_wall_s']:.0f}s, load {r['loadavg_before'][0]:.2f}->"
            f"{r['loadavg_after'][0]:.2f}]", flush=True)
      if r.get("status") == "error":
        print(r.get("child_output_tail", ""), file=sys.stderr)
  save()
  meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
  save()
  print(tables(results, opts["attentions"]))
  print(bars(results, opts["attentions"])[0])
  print(memory_growth(results, opts["attentions"]))
  print(f"\nraw figures: {flags.out}")
  return 0 if all(r.get("status") in ("ok", "skipped") for r in results) else 1


def report_main(flags):
  """Re-renders the tables of a JSON written by an earlier run (derived figures recomputed)."""
  with open(flags.report) as f:
    data = json.load(f)
  cfg = load_config(data["meta"]["config"])
  attentions = data["meta"]["options"]["attentions"]
  model_cfgs = {}
  for attention in attentions:
    model_cfgs[attention] = cfg.model.copy_and_resolve_references()
    model_cfgs[attention].attention = attention
    if data["results"] and data["results"][0].get("remat_policy"):
      model_cfgs[attention].remat_policy = data["results"][0]["remat_policy"]
  results = data["results"]
  add_derived(results, model_cfgs)
  print(tables(results, attentions))
  print(bars(results, attentions)[0])
  print(memory_growth(results, attentions))
  return 0


def main(argv=None):
  flags = parse_flags(argv)
  if flags.report:
    return report_main(flags)
  if flags._child_out:
    child_main(flags)
    return 0
  return parent_main(flags)


if __name__ == "__main__":
  sys.exit(main())
