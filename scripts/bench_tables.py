"""Tables of scripts/bench.py: derived figures (model FLOP/s, ratios against 4K), the markdown
tables per attention, the bars (64K vs 4K) and the memory growth table. Imported by bench.py;
no JAX here."""
import statistics

from longctx.flops import model_flops_per_token

_MiB = 2 ** 20


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
    if r.get("paired_train_step_times_s"):
      tokens = r["batch"] * r["length"]
      r["paired_fractions"] = [flops["train"] * tokens / step / 1e9 / mm for step, mm in
                               zip(r["paired_train_step_times_s"], r["paired_matmul_gflops"])]
      r["fraction_of_matmul_peak_paired"] = statistics.median(r["paired_fractions"])
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


def _paired(r):
  fr = r.get("paired_fractions")
  if not fr:
    return "-"
  return (f"{100 * r['fraction_of_matmul_peak_paired']:.1f}% "
          f"[{100 * min(fr):.0f}-{100 * max(fr):.0f}%]")


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
              f"| matmul GFLOP/s | % of matmul peak | % paired [min-max] "
              f"| load 1m before/after (other CPU) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
      load = (f"{r['loadavg_before'][0]:.2f}/{r['loadavg_after'][0]:.2f} "
              f"({_f(r.get('other_procs_cpu_cores'), '.2f')} of {r['cpu_count']})"
              if "loadavg_before" in r else "-")
      if r.get("status") != "ok":
        lines.append(f"| {_fmt_len(r['length'])} | {r.get('status')}: {r.get('reason', '')} "
                     + "| " * 11 + f"{load} |")
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
          f"| {100 * r['fraction_of_matmul_peak']:.1f}% | {_paired(r)} | {load} |")
  return "\n".join(lines)


def bars(results, attentions):
  """64K vs 4K (or longest vs reference) against the issue's bars."""
  lines = ["\n### bars (longest length vs reference)\n",
           "| attention | lengths | compile x (<=1.2) | compile CPU x | time/token x (<=1.15) "
           "| CPU time/token x | peak RSS x (<=1.25) | XLA mem x (<=1.25) "
           "| % of matmul peak (>=40%): median [min-max] over lengths | % of run's best matmul "
           "| % paired: median over lengths |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
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
    paired = [r["fraction_of_matmul_peak_paired"] for r in ok if "fraction_of_matmul_peak_paired" in r]
    paired_frac = statistics.median(paired) if paired else None
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
                          run_matmul_gflops=ok[0]["run_matmul_gflops"],
                          median_fraction_of_matmul_peak_paired=paired_frac)
    lines.append(f"| {attention} | {_fmt_len(last['length'])} vs {_fmt_len(last['ref_length'])} "
                 f"| {mark(q['compile'], 1.2)} | {_f(q['compile_cpu'], '.2f')} "
                 f"| {mark(q['train_time_per_token'], 1.15)} "
                 f"| {_f(q['train_cpu_time_per_token'], '.2f')} "
                 f"| {mark(q['rss_peak'], 1.25)} | {mark(q['xla_train'], 1.25)} "
                 f"| {100 * frac:.1f}% [{100 * min(fracs):.0f}-{100 * max(fracs):.0f}%] "
                 f"{'ok' if frac >= 0.4 else 'FAIL'} "
                 f"| {100 * run_frac:.1f}% of {ok[0]['run_matmul_gflops']:.0f} GFLOP/s "
                 f"| {'-' if paired_frac is None else format(100 * paired_frac, '.1f') + '%'} |")
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
