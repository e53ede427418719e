r"""Sequence-length scaling benchmark of the decoder: compile time, throughput, memory, FLOP/s.

  python scripts/bench.py --config=configs/bench/decoder.py:cpu
  python scripts/bench.py --config=configs/bench/decoder.py:cpu --attention=infini,bswa,xl,full \
      --out bench_out/bench.json
  python scripts/bench.py --config=configs/bench/decoder.py:smoke --lengths=256 --repeats=1  # quick
  python scripts/bench.py --report bench_out/bench.json  # re-print the tables of an earlier run

For every (attention, length) a FRESH child process (this script with --_child_out, JAX_PLATFORMS from
--platform, cpu by default, no persistent compilation cache) measures:
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
  - on an accelerator (--platform=cuda): the device allocator's peak_bytes_in_use after the
    training steps and at the end (no preallocation), and the guard below compares XLA's estimate
    with 90% of the device's memory instead of the host budget.
The parent records os.getloadavg() before and after each child, the CPU count, and an estimate of
the CPU used by OTHER processes during the child (busy time from /proc/stat minus the child's own
CPU time, in cores). The child's own threads count in the load average after it.

  - paired rounds (--paired_rounds, default 5): one more training step, then the matmul timed 3
    times, repeated; each round's model GFLOP/s over its own matmul GFLOP/s is the "paired"
    fraction (median over rounds). On a shared machine whose speed drifts by tens of percent
    between minutes, a step and a matmul timed seconds apart see the same conditions.
Model FLOPs: longctx/flops.py (its docstring gives the formulas; no recompute is counted).
model GFLOP/s = train FLOPs/token * train tokens/s; fraction = model GFLOP/s / matmul GFLOP/s
(the child's median matmul, the run's best child median, and the paired median: all reported).

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
_SCRIPTS = os.path.dirname(os.path.abspath(__file__))
if _SCRIPTS not in sys.path:  # bench_tables beside this file, also when loaded by path (tests)
  sys.path.insert(0, _SCRIPTS)

from bench_tables import _fmt_len, add_derived, bars, memory_growth, tables  # noqa: E402
from longctx.flops import model_flops_per_token  # noqa: E402,F401  (re-exported for callers)
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
  p.add_argument("--paired_rounds", type=int, default=None,
                 help="rounds of (one training step, then the matmul) after the measurements, for "
                      "the paired fraction of the matmul peak (default: bench.paired_rounds; 0: none)")
  p.add_argument("--remat_policy", default=None, help="override model.remat_policy")
  p.add_argument("--out", default="bench_out/bench.json", help="JSON with all raw figures")
  p.add_argument("--full_max_len", type=int, default=None,
                 help="skip `full` attention above this length (default: bench.full_max_len)")
  p.add_argument("--mem_budget_gb", type=float, default=10.0,
                 help="per-child memory budget in GiB (XLA estimate guard and RSS watchdog); "
                      "capped by 80%% of available memory when the child starts")
  p.add_argument("--child_timeout_s", type=float, default=1800.0)
  p.add_argument("--matmul_size", type=int, default=None)
  p.add_argument("--platform", default="cpu", choices=("cpu", "cuda"),
                 help="JAX platform of the children (default cpu). On cuda the memory guard and the "
                      "reported peak are the device's (memory_stats peak_bytes_in_use), the RSS "
                      "watchdog still guards host memory")
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
      matmul_repeats=bench.matmul_repeats,
      paired_rounds=(flags.paired_rounds if flags.paired_rounds is not None
                     else bench.paired_rounds))
  if opts["batch"] <= 0 or opts["repeats"] <= 0:
    raise ValueError("--batch and --repeats must be positive")
  if opts["paired_rounds"] < 0:
    raise ValueError("--paired_rounds must be >= 0")
  return opts


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


def _device_memory(jax):
  """(peak bytes in use, bytes limit) of the first device, or (None, None) where the backend keeps
  no allocator statistics (the CPU client)."""
  try:
    stats = jax.devices()[0].memory_stats()
  except Exception:  # pylint: disable=broad-except
    stats = None
  if not stats:
    return None, None
  return stats.get("peak_bytes_in_use"), stats.get("bytes_limit")


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
  _, device_limit = _device_memory(jax)
  if device_limit:  # an accelerator: its buffers live in device memory, not in the RSS.
    res["device_bytes_limit"] = device_limit
    budget = int(0.9 * device_limit)
    host_bytes = 0
  else:
    host_bytes = res["rss_after_compile_bytes"]
  if xla_bytes + host_bytes > budget:
    res["status"] = "skipped"
    res["reason"] = (f"XLA estimate {xla_bytes / _GiB:.2f} GiB > 90% of the device memory, "
                     f"{budget / _GiB:.2f} GiB" if device_limit else
                     f"XLA estimate {xla_bytes / _GiB:.2f} GiB + RSS {host_bytes / _GiB:.2f} GiB > "
                     f"budget {budget / _GiB:.2f} GiB")
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
  res["device_peak_after_train_bytes"] = _device_memory(jax)[0]
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
  res["device_peak_bytes"] = _device_memory(jax)[0]  # None on the CPU
  ru = resource.getrusage(resource.RUSAGE_SELF)
  res["model_cpu_s"] = ru.ru_utime + ru.ru_stime
  res["model_wall_s"] = time.perf_counter() - t_start
  write()

  # --- the machine's float32 matmul peak, same process, same load, after the model.
  del fwd_compiled, params
  n = opts["matmul_size"]
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  mm = jax.jit(lambda a, b: a @ b).lower(a, b).compile()
  jax.block_until_ready(mm(a, b))
  run_matmul = lambda: jax.block_until_ready(mm(a, b))
  _, times, _ = _time_calls(run_matmul, opts["matmul_repeats"])
  res.update(matmul_size=n, matmul_times_s=times,
             matmul_gflops=2 * n ** 3 / statistics.median(times) / 1e9,
             matmul_gflops_best=2 * n ** 3 / min(times) / 1e9)
  write()

  # --- paired rounds: one training step, then the matmul (median of 3), `paired_rounds` times.
  # On a shared machine the speed drifts by tens of percent within minutes; a step and the matmul
  # timed seconds apart see the same conditions, so their ratio is steadier than either figure.
  paired_steps, paired_matmul = [], []
  for _ in range(opts["paired_rounds"]):
    t0 = time.perf_counter()
    run_train()
    paired_steps.append(time.perf_counter() - t0)
    paired_matmul.append(2 * n ** 3 / statistics.median(_time_calls(run_matmul, 3)[1]) / 1e9)
  res.update(paired_train_step_times_s=paired_steps, paired_matmul_gflops=paired_matmul)
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
         f"--paired_rounds={opts['paired_rounds']}",
         f"--_child_out={out_path}", f"--_mem_budget_bytes={budget}"]
  if flags.remat_policy is not None:
    cmd.append(f"--remat_policy={flags.remat_policy}")
  cmd.append(f"--platform={flags.platform}")
  # No preallocation on a GPU: the allocator's peak_bytes_in_use is then the step's own footprint.
  env = dict(os.environ, JAX_PLATFORMS=flags.platform, JAX_ENABLE_COMPILATION_CACHE="false",
             XLA_PYTHON_CLIENT_PREALLOCATE="false",
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
              jax_platform=flags.platform,
              platform=platform.platform(), python=sys.version.split()[0],
              started=time.strftime("%Y-%m-%d %H:%M:%S"), mem_budget_gb=flags.mem_budget_gb,
              config_dict=json.loads(cfg.to_json()),
              model_flops_formula="longctx/flops.py (no recompute counted)")
  results = []

  def save():
    add_derived(results, model_cfgs)
    _, bar_figures = bars(results, opts["attentions"])
    with open(flags.out, "w") as f:
      json.dump(dict(meta=meta, results=results, bars=bar_figures), f, indent=1)

  print(f"# bench: {flags.config}  attention={','.join(opts['attentions'])}  "
        f"lengths={','.join(map(_fmt_len, opts['lengths']))}  batch={opts['batch']}  "
        f"repeats={opts['repeats']}  remat={cfg.model.remat_policy}  cpus={os.cpu_count()}  "
        f"platform={flags.platform}",
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
      device_peak = (f" device peak {r['device_peak_bytes'] / _MiB:,.0f} MiB"
                     if r.get("device_peak_bytes") else "")
      summary = (f"compile {r['compile_s']:.1f}s ({r['compile_cpu_s']:.1f} CPU s) train {r['train_tokens_per_s']:,.0f} tok/s "
                 f"fwd {r['fwd_tokens_per_s']:,.0f} tok/s peak RSS {r['rss_peak_bytes'] / _MiB:,.0f} "
                 f"MiB{device_peak} matmul {r['matmul_gflops']:.1f} GFLOP/s"
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
