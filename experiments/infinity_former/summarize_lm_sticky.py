"""Tabulate attempt 14 (run_lm_sticky.sh): held-out bits per byte of each sampling rule's fine-tune
on the same base, and the sticky - uniform differences per seed, their mean +- standard error over
seeds, and per-file signs.

  python experiments/infinity_former/summarize_lm_sticky.py runs/s50/lm_seed0 runs/s50/lm_seed1 ...
"""
import argparse
import json
import os

from longctx.evaluate import mean_and_se

ARMS = ("base", "ft_u", "ft_q", "ft_c", "ft_u_read_q", "ft_u_read_c")
DIFFS = (("ft_c", "ft_u"), ("ft_q", "ft_u"), ("ft_u_read_c", "ft_u"), ("ft_u_read_q", "ft_u"))


def load(seed_dir):
  out = {}
  for arm in ARMS:
    path = os.path.join(seed_dir, arm, "lm.json")
    if os.path.exists(path):
      with open(path) as f:
        out[arm] = json.load(f)
  return out


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("seed_dirs", nargs="+")
  args = p.parse_args()
  runs = {d: load(d) for d in args.seed_dirs}
  print("| seed dir | " + " | ".join(ARMS) + " |")
  print("|---|" + "---:|" * len(ARMS))
  for d, r in runs.items():
    cells = [f"{r[a]['bits_per_byte']:.4f}" if a in r else "" for a in ARMS]
    print(f"| {d} | " + " | ".join(cells) + " |")
  print()
  print("| difference (bits/byte) | " + " | ".join(os.path.basename(d) for d in runs)
        + " | mean +- s.e. | files below 0 |")
  print("|---|" + "---:|" * (len(runs) + 2))
  for a, b in DIFFS:
    per_seed, below, files = [], 0, 0
    for r in runs.values():
      if a in r and b in r:
        per_seed.append(r[a]["bits_per_byte"] - r[b]["bits_per_byte"])
        docs_b = {doc["name"]: doc["bits_per_byte"] for doc in r[b]["per_document"]}
        for doc in r[a]["per_document"]:
          files += 1
          below += doc["bits_per_byte"] - docs_b[doc["name"]] < 0
      else:
        per_seed.append(None)
    done = [x for x in per_seed if x is not None]
    if not done:
      continue
    m, se = mean_and_se(done)
    cells = ["" if x is None else f"{x:+.4f}" for x in per_seed]
    print(f"| {a} - {b} | " + " | ".join(cells) + f" | {m:+.4f} +- {se:.4f} | {below} / {files} |")


if __name__ == "__main__":
  main()
