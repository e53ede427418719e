"""The sorting task of the infinity-former paper (Martins et al., arXiv 2109.00301, Sec. 4.1), as the
official generator `sorting/generate_data.py` builds it (papers.md 4(b)):

  - 20 symbols (ids 0..19) and a separator (id 20); vocabulary 21.
  - Per sequence two distributions p_initial, p_final over the symbols, each from integer weights
    drawn uniformly in 1..9 and normalised. Token j (0-based) of the T symbols is drawn from
    (1 - r) p_initial + r p_final with r = (j + 1) / T, so the distribution drifts along the sequence.
  - Target: the 20 symbols sorted by decreasing count in the sequence (ties: the symbol seen first
    comes first, as Python's Counter.most_common orders them; symbols that never occur are appended
    in increasing id order, as the official loop does).
  - Document: the T symbols, the separator, then the 20 sorted symbols. The official loader predicts
    only the sorted symbols (every other target is padding, excluded from loss and accuracy), so the
    weights are 1 on the 20 positions whose target is a sorted symbol and 0 elsewhere.
Decision (the official code chunks an unaligned document into 1024-token segments, the last one
short): here an example's inputs are exactly `seq_len` tokens, so T = seq_len - 20 symbols (the
document has T + 21 tokens; the inputs drop its last token). seq_len 4096 therefore has 4076 symbols.
"""
import numpy as np

NUM_SYMBOLS = 20
SEPARATOR = 20
VOCAB_SIZE = 21
TARGET_LEN = NUM_SYMBOLS          # tokens of the answer (the sorted symbols)
_EVAL_STREAM = 0x50_27_1E         # separates evaluation seeds from training ones


def _weights(rng: np.random.Generator):
  w = rng.integers(1, 10, size=NUM_SYMBOLS).astype(np.float64)
  return w / w.sum()


def sorted_by_count(symbols: np.ndarray) -> np.ndarray:
  """The 20 symbols by decreasing count; ties by first occurrence; unseen symbols last by id."""
  symbols = np.asarray(symbols)
  counts = np.bincount(symbols, minlength=NUM_SYMBOLS)
  first = np.full(NUM_SYMBOLS, len(symbols), np.int64)
  seen, idx = np.unique(symbols, return_index=True)
  first[seen] = idx
  present = [s for s in np.lexsort((first, -counts)) if counts[s] > 0]
  absent = [s for s in range(NUM_SYMBOLS) if counts[s] == 0]
  return np.asarray(present + absent, np.int32)


def sample_symbols(rng: np.random.Generator, num_symbols: int) -> np.ndarray:
  """T symbols from the drifting mixture (vectorised inverse-CDF draws, one uniform per token)."""
  if num_symbols < 1:
    raise ValueError(f"num_symbols={num_symbols} must be >= 1")
  p_initial, p_final = _weights(rng), _weights(rng)
  r = (np.arange(num_symbols) + 1.0) / num_symbols
  probs = (1.0 - r)[:, None] * p_initial + r[:, None] * p_final          # [T, 20]
  cdf = np.cumsum(probs, axis=1)
  u = rng.random(num_symbols) * cdf[:, -1]
  return np.minimum((u[:, None] >= cdf).sum(axis=1), NUM_SYMBOLS - 1).astype(np.int32)


def document(rng: np.random.Generator, num_symbols: int) -> np.ndarray:
  """One document [T + 21]: symbols, separator, sorted symbols."""
  symbols = sample_symbols(rng, num_symbols)
  return np.concatenate([symbols, [SEPARATOR], sorted_by_count(symbols)]).astype(np.int32)


def example_arrays(doc: np.ndarray) -> dict:
  """Next-token arrays of one document: inputs/targets [T + 20], weights 1 on the sorted symbols."""
  inputs, targets = doc[:-1], doc[1:]
  weights = np.zeros(len(inputs), np.float32)
  weights[-TARGET_LEN:] = 1.0
  return {"inputs": inputs, "targets": targets, "weights": weights}


def num_symbols_for(seq_len: int) -> int:
  if seq_len <= TARGET_LEN:
    raise ValueError(f"seq_len={seq_len} must exceed {TARGET_LEN} (the sorted answer) for sorting")
  return seq_len - TARGET_LEN


def batch(rng: np.random.Generator, batch_size: int, seq_len: int) -> dict:
  """[B, seq_len] inputs/targets/weights of fresh documents."""
  t = num_symbols_for(seq_len)
  rows = [example_arrays(document(rng, t)) for _ in range(batch_size)]
  return {k: np.stack([r[k] for r in rows]) for k in ("inputs", "targets", "weights")}


def eval_batch(seed: int, samples: int, seq_len: int) -> dict:
  """Deterministic evaluation documents for one length (independent of the training stream)."""
  return batch(np.random.default_rng([_EVAL_STREAM, seed, seq_len]), samples, seq_len)
