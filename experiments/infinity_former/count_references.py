"""Count-based references for the sorting table: what a model that counts a window of the symbols
exactly would score, teacher-forced, on the evaluator's own documents (longctx.data.sorting.eval_batch,
the seed of configs/sorting). At answer position i the reference predicts the most frequent symbol
(counted in the window) that is not among the true first i sorted symbols; ties by lowest id.

  python experiments/infinity_former/count_references.py --lengths 256,512,1024,2048 --samples 128
"""
import argparse

import numpy as np

from longctx.data import sorting


def reference_accuracy(inputs: np.ndarray, window: int) -> float:
  """inputs [N, L] evaluation inputs; window: symbols counted (0 = all) before the separator."""
  t = inputs.shape[1] - sorting.TARGET_LEN
  hits = []
  for row in inputs:
    symbols = row[:t]
    # The answer's targets: the sorted symbols (inputs after the separator + the last target).
    truth = sorting.sorted_by_count(symbols)
    counted = symbols[-window:] if window else symbols
    counts = np.bincount(counted, minlength=sorting.NUM_SYMBOLS).astype(np.float64)
    emitted = np.zeros(sorting.NUM_SYMBOLS, bool)
    for i in range(sorting.TARGET_LEN):
      score = np.where(emitted, -1.0, counts)
      hits.append(int(np.argmax(score)) == truth[i])   # argmax takes the lowest id on ties
      emitted[truth[i]] = True
  return float(np.mean(hits))


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--lengths", default="256,512,1024,2048")
  p.add_argument("--samples", type=int, default=128)
  p.add_argument("--seed", type=int, default=1, help="evals.sorting.seed")
  p.add_argument("--windows", default="0,128,64", help="symbols counted; 0 = the whole sequence")
  a = p.parse_args()
  lengths = [int(x) for x in a.lengths.split(",")]
  windows = [int(x) for x in a.windows.split(",")]
  print("| reference | " + " | ".join(f"{n:,}" for n in lengths) + " |")
  print("|---|" + "---:|" * len(lengths))
  for w in windows:
    accs = [reference_accuracy(sorting.eval_batch(a.seed, a.samples, n)["inputs"], w)
            for n in lengths]
    name = "exact counts of the whole sequence" if w == 0 else f"counts of the last {w} symbols"
    print(f"| {name} | " + " | ".join(f"{100 * x:.1f}" for x in accs) + " |")


if __name__ == "__main__":
  main()
