"""Seed-aggregated S-NIAH table: per model, the token accuracy on the answer (%) at each length,
averaged over depths, for every seed and their mean, from the runs' niah.json files.

  python experiments/titans/summarize_niah.py \
      LMM=runs/s9/niah/lmm_clip,runs/s10/niah/lmm_seed1 MAC=runs/s9/niah/mac_clip,runs/s10/niah/mac_seed1

Each argument is NAME=WORKDIR[,WORKDIR...] (one workdir per seed, in seed order). Prints markdown.
"""
import json
import os
import sys


def length_means(workdir: str, needle: str = "passkey") -> dict:
  """{length: mean token accuracy (%) over the depths} of one run."""
  path = os.path.join(workdir, "niah.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} does not exist (has the run finished its evaluation?)")
  cells = [c for c in json.load(open(path))["grid"] if c["needle"] == needle]
  if not cells:
    raise ValueError(f"{path} has no {needle!r} cells")
  out = {}
  for c in cells:
    out.setdefault(c["length"], []).append(100.0 * c["token_accuracy"])
  return {n: sum(v) / len(v) for n, v in sorted(out.items())}


def main(argv):
  if not argv:
    sys.exit(__doc__)
  rows, lengths = [], None
  for arg in argv:
    name, eq, dirs = arg.partition("=")
    if not eq or not dirs:
      sys.exit(f"summarize_niah: argument {arg!r} is not NAME=WORKDIR[,WORKDIR...]")
    per_seed = [length_means(d) for d in dirs.split(",")]
    these = sorted(per_seed[0])
    if lengths is None:
      lengths = these
    if any(sorted(s) != lengths for s in per_seed):
      sys.exit(f"summarize_niah: {name}'s runs were evaluated at other lengths than {lengths}")
    rows.append((name, per_seed))
  print("| model | " + " | ".join(f"{n:,}: per seed -> mean" for n in lengths) + " |")
  print("|---|" + "---|" * len(lengths))
  for name, per_seed in rows:
    cells = []
    for n in lengths:
      vals = [s[n] for s in per_seed]
      cells.append(" / ".join(f"{v:.0f}" for v in vals) + f" -> **{sum(vals) / len(vals):.0f}**")
    print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
  main(sys.argv[1:])
