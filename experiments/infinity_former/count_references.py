"""Count-based references for the sorting table: what a model that counts a window of the symbols
exactly would score, teacher-forced, on the evaluator's own documents (longctx.data.sorting.eval_batch,
the seed of configs/sorting). At answer position i the reference predicts the most frequent symbol
(counted in the window) that is not among the true first i sorted symbols; ties by lowest id.

`--taus` adds a reference for the long-term memory's time scale: counts weighted by the share of
the unit interval each block of the past holds in the memory signal after the contractions with a
fixed tau (papers.md 4(a)). A block written j contractions ago spans (1 - tau) tau^j of [0, 1], the
first block tau^(n-1), so a reader whose density is flat over [0, 1] (as the trained readers' broad
densities nearly are, probe_densities.py) counts an exponential moving average of the blocks, not the
whole sequence. The blocks in the STM and the current block are given the next shares (as if already
written), so the reference is one geometric weighting of all blocks of `--block` tokens.

  python experiments/infinity_former/count_references.py --lengths 256,512,1024,2048 --samples 128
  python experiments/infinity_former/count_references.py --windows= --taus 0.75 --samples 1024
"""
import argparse

import numpy as np

from longctx.data import sorting
from longctx.ops import continuous_attention


def contraction_weights(seq_len: int, num_symbols: int, block: int, tau: float) -> np.ndarray:
  """[num_symbols] weight of each symbol position: its block's share of the memory's unit interval
  after the fixed-tau contractions (module docstring), spread evenly over the block's tokens."""
  share = continuous_attention.contraction_shares(-(-seq_len // block), tau)
  return share[np.arange(num_symbols) // block] / block


def reference_accuracy(inputs: np.ndarray, window: int, weights=None) -> float:
  """inputs [N, L] evaluation inputs; window: symbols counted (0 = all) before the separator;
  weights [T] (optional, with window 0): a weight per symbol position instead of 1."""
  if weights is not None and window:
    raise ValueError("reference_accuracy: weights count the whole sequence; give window 0 with them")
  t = inputs.shape[1] - sorting.TARGET_LEN
  hits = []
  for row in inputs:
    symbols = row[:t]
    # The answer's targets: the sorted symbols (inputs after the separator + the last target).
    truth = sorting.sorted_by_count(symbols)
    counted = symbols[-window:] if window else symbols
    counts = np.bincount(counted, weights=weights,
                         minlength=sorting.NUM_SYMBOLS).astype(np.float64)
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
  p.add_argument("--taus", default="", help="contraction taus of the memory-measure reference")
  p.add_argument("--block", type=int, default=64, help="block length of the --taus reference")
  a = p.parse_args()
  lengths = [int(x) for x in a.lengths.split(",")]
  windows = [int(x) for x in a.windows.split(",") if x]
  taus = [float(x) for x in a.taus.split(",") if x]
  print("| reference | " + " | ".join(f"{n:,}" for n in lengths) + " |")
  print("|---|" + "---:|" * len(lengths))
  for w in windows:
    accs = [reference_accuracy(sorting.eval_batch(a.seed, a.samples, n)["inputs"], w)
            for n in lengths]
    name = "exact counts of the whole sequence" if w == 0 else f"counts of the last {w} symbols"
    print(f"| {name} | " + " | ".join(f"{100 * x:.1f}" for x in accs) + " |")
  for tau in taus:
    accs = []
    for n in lengths:
      inputs = sorting.eval_batch(a.seed, a.samples, n)["inputs"]
      w = contraction_weights(n, sorting.num_symbols_for(n), a.block, tau)
      accs.append(reference_accuracy(inputs, 0, w))
    name = f"counts weighted by the memory measure, tau {tau}, blocks of {a.block}"
    print(f"| {name} | " + " | ".join(f"{100 * x:.1f}" for x in accs) + " |")


if __name__ == "__main__":
  main()
