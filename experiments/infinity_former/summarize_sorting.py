"""The sorting bar's table over training seeds: each model evaluated at its own training length.

Reads `<dir>/<run>_<L>/sorting.json` as written by `run_sorting_bar.sh` (one directory per seed) and,
optionally, earlier seeds transcribed from README.md (`--prior`, repeatable: `sorting_seeds_0_1.json`
holds attempts 4-5, `sorting_seed_2.json` attempt 6, `sorting_seed_3.json` attempt 7; their run
directories are gone). Prints per seed and run the accuracy at each length, the change from the
shortest length, then the mean and standard error over seeds of each, sticky minus uniform (model
against model, and on the same base where run_sorting_bar.sh's inf_then_sticky and
inf_sticky_then_uniform ran; the random-draw fine-tune inf_then_sticky_cat against the uniform and
the quantile-sticky fine-tunes of its base), and the bar's first clause paired by seed:
infinity-former's change from the shortest length minus Transformer-XL's (> 0: it falls more slowly).

  python experiments/infinity_former/summarize_sorting.py runs/NEW_SEED_DIR --lengths 256,512,1024 \
      --prior experiments/infinity_former/sorting_seeds_0_1.json \
      --prior experiments/infinity_former/sorting_seed_2.json \
      --prior experiments/infinity_former/sorting_seed_3.json
"""
import argparse
import json
import os

from longctx.evaluate import mean_and_se

RUNS = ("xl", "cmp", "inf", "inf_sticky", "inf_equal", "inf_sticky_equal", "inf_then_sticky",
        "inf_sticky_then_uniform", "inf_then_sticky_cat")
NAMES = {"xl": "Transformer-XL", "cmp": "Compressive", "inf": "infinity-former, uniform",
         "inf_sticky": "infinity-former, sticky",
         "inf_equal": "infinity-former, uniform, tau_n = n/(n+1)",
         "inf_sticky_equal": "infinity-former, sticky, tau_n = n/(n+1)",
         # the fine-tune at each length starts from the other rule's base
         "inf_then_sticky": "infinity-former, uniform base, sticky fine-tune",
         "inf_sticky_then_uniform": "infinity-former, sticky base, uniform fine-tune",
         # the official random draw of the sticky points (sticky_draw='categorical', attempt 13)
         "inf_then_sticky_cat": "infinity-former, uniform base, random-draw sticky fine-tune"}


def read_seed_dir(path, lengths):
  """{run: {length: accuracy %}} for the models of one seed's directory (missing cells left out)."""
  table = {}
  for run in RUNS:
    for length in lengths:
      f = os.path.join(path, f"{run}_{length}", "sorting.json")
      if not os.path.exists(f):
        continue
      rows = [r for r in json.load(open(f))["rows"] if r["length"] == length]
      if not rows:
        raise ValueError(f"{f} has no row at its training length {length}")
      table.setdefault(run, {})[length] = 100 * rows[0]["token_accuracy"]
  return table


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("dirs", nargs="*", help="one run_sorting_bar.sh output directory per seed")
  parser.add_argument("--prior", action="append", default=[],
                      help="JSON of earlier seeds: {seed: {run: {length: accuracy %}}} (repeatable)")
  parser.add_argument("--lengths", default="256,512,1024,2048")
  args = parser.parse_args()
  lengths = [int(x) for x in args.lengths.split(",")]
  seeds = {}
  for prior in args.prior:
    for seed, runs in json.load(open(prior)).items():
      if seed.startswith("_"):
        continue   # comments
      if seed in seeds:
        parser.error(f"{prior}: seed {seed} is already given by an earlier --prior")
      seeds[seed] = {run: {int(k): v for k, v in cells.items()} for run, cells in runs.items()}
  for d in args.dirs:  # a directory named like a prior's seed adds its runs' cells to that seed
    seed = seeds.setdefault(os.path.basename(os.path.normpath(d)), {})
    for run, cells in read_seed_dir(d, lengths).items():
      seed.setdefault(run, {}).update(cells)   # merged by length, not replacing the run's row
  if not seeds:
    parser.error("no seeds: give directories or --prior")

  head = "| run | seed | " + " | ".join(f"{n:,}" for n in lengths) + " | " + " | ".join(
      f"change {lengths[0]} -> {n:,}" for n in lengths[1:]) + " |"
  print(head)
  print("|---|---|" + "---:|" * (2 * len(lengths) - 1))
  for run in RUNS:
    per_seed = {s: t[run] for s, t in seeds.items() if run in t}
    if not per_seed:
      continue
    for seed, cells in per_seed.items():
      acc = [f"{cells[n]:.1f}" if n in cells else "" for n in lengths]
      drop = [f"{cells[n] - cells[lengths[0]]:+.1f}" if n in cells and lengths[0] in cells else ""
              for n in lengths[1:]]
      print(f"| {NAMES[run]} | {seed} | " + " | ".join(acc + drop) + " |")
    cols = []
    for n in lengths:
      vals = [c[n] for c in per_seed.values() if n in c]
      cols.append(f"**{mean_and_se(vals)[0]:.1f}** +- {mean_and_se(vals)[1]:.1f} ({len(vals)})" if vals else "")
    for n in lengths[1:]:
      vals = [c[n] - c[lengths[0]] for c in per_seed.values() if n in c and lengths[0] in c]
      cols.append(f"**{mean_and_se(vals)[0]:+.1f}** +- {mean_and_se(vals)[1]:.1f} ({len(vals)})" if vals else "")
    print(f"| {NAMES[run]} | mean +- s.e. (seeds) | " + " | ".join(cols) + " |")

  print(f"\nrelative change from {lengths[0]} (% of the {lengths[0]} level), mean over seeds:")
  for run in RUNS:
    per_seed = [t[run] for t in seeds.values() if run in t and lengths[0] in t[run]]
    cols = []
    for n in lengths[1:]:
      vals = [100 * (c[n] / c[lengths[0]] - 1) for c in per_seed if n in c]
      cols.append(f"{n}: {mean_and_se(vals)[0]:+.1f}% ({len(vals)})" if vals else "")
    if per_seed:
      print(f"  {NAMES[run]}: " + "  ".join(cols))

  for other, base in (("inf_sticky", "inf"), ("inf_equal", "inf"), ("inf_sticky_equal", "inf_equal"),
                      ("inf_then_sticky_cat", "inf"), ("inf_then_sticky_cat", "inf_then_sticky")):
    rows = []
    for n in lengths:
      diffs = [t[other][n] - t[base][n] for t in seeds.values()
               if n in t.get(other, {}) and n in t.get(base, {})]
      if diffs:
        m, se = mean_and_se(diffs)
        rows.append(f"  {n:>5}: " + " ".join(f"{x:+.1f}" for x in diffs) + f"  mean {m:+.1f} +- {se:.1f}")
    if rows:
      print(f"\n{NAMES[other]} minus {NAMES[base]}, paired by seed:\n" + "\n".join(rows))

  # Sticky minus uniform with the base held fixed (inf_then_sticky, inf_sticky_then_uniform): per
  # seed and length, the mean of (uniform base: sticky fine-tune - uniform fine-tune) and (sticky
  # base: sticky fine-tune - uniform fine-tune), so the base's training luck cancels.
  rows = []
  for n in lengths:
    per_seed = []
    for seed, t in seeds.items():
      cells = [t.get(r, {}).get(n) for r in ("inf_then_sticky", "inf", "inf_sticky",
                                              "inf_sticky_then_uniform")]
      # a base whose two fine-tunes did not both run is left out of the seed's mean ('n/a')
      diffs = [None if None in (a, b) else a - b for a, b in ((cells[0], cells[1]),
                                                              (cells[2], cells[3]))]
      if diffs != [None, None]:
        present = [d for d in diffs if d is not None]
        per_seed.append((seed, *diffs, sum(present) / len(present)))
    if per_seed:
      m, se = mean_and_se([x[3] for x in per_seed])
      fmt = lambda d: "n/a" if d is None else f"{d:+.1f}"  # noqa: E731
      rows.append(f"  {n:>5}: " + "  ".join(f"{s} {fmt(a)} / {fmt(b)} -> {c:+.1f}"
                                            for s, a, b, c in per_seed) + f"   mean {m:+.1f} +- {se:.1f}")
  if rows:
    print("\nsticky minus uniform fine-tune on the same base (seed: on the uniform base / on the "
          "sticky base -> mean):\n" + "\n".join(rows))

  print("\ninfinity-former's change minus Transformer-XL's, paired by seed (> 0: falls more slowly):")
  for run in ("inf", "inf_sticky", "inf_equal", "inf_sticky_equal"):
    for n in lengths[1:]:
      diffs = [(t[run][n] - t[run][lengths[0]]) - (t["xl"][n] - t["xl"][lengths[0]])
               for t in seeds.values()
               if all(m in t.get(run, {}) and m in t.get("xl", {}) for m in (lengths[0], n))]
      if diffs:
        m, se = mean_and_se(diffs)
        print(f"  {NAMES[run]}, {lengths[0]} -> {n}: " + " ".join(f"{x:+.1f}" for x in diffs)
              + f"  mean {m:+.1f} +- {se:.1f}; {sum(x > 0 for x in diffs)} of {len(diffs)} seeds > 0")


if __name__ == "__main__":
  main()
