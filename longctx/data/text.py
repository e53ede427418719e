"""Document streaming for language modelling (PG19 through tfds, local .txt corpora).

Each of the B batch slots streams one document at a time through consecutive training sequences, so
the memory carried in the train state continues across steps within a document and is reset between
documents:

  slot b, step s:   inputs  = doc[o : o + T]       positions = o .. o + T - 1  (absolute in the doc)
                    targets = doc[o + 1 : o + T + 1]
                    reset   = (o == 0)             start-of-document flag: the layers clear memory
  then o += T; when no target is left (o >= len(doc) - 1) the slot takes the next document.

Consecutive sequences overlap by one token, so every token of a document except its first is a
target exactly once. Decisions:
- Tail: the last sequence of a document usually has fewer than T targets. It is padded at the end
  with token 0 and weight 0 (never dropped, never filled with the next document): the weights say
  which targets count. The padding runs through the memory but the next step resets that slot.
- Order: documents are taken in a fixed order, reshuffled every epoch with `seed` (epoch e uses
  permutation rng([seed, e])), or in corpus order with shuffle=False. The stream never ends: epoch
  e + 1 follows epoch e. A free slot takes the next document of this order; slots free up in slot
  order within a step, so the assignment is a deterministic function of the document lengths.
- A document with fewer than 2 tokens has no target: it raises a ValueError naming it (local
  corpora check every file before training starts).
- Position: `position(step)` is JSON (per slot: the document's index in the endless order and the
  token offset; the next document to hand out). `restore(position)` resumes from it exactly;
  `batch(step)` at any other step recomputes the state by replaying the document lengths from step
  0, so both ways of resuming give the batches an uninterrupted run would have seen.
Arrays are numpy: inputs/targets/positions [B, T] int32, weights [B, T] float32, reset [B] bool.
"""
import dataclasses
from typing import Callable

import numpy as np


@dataclasses.dataclass
class DocumentCorpus:
  """Random access to tokenized documents: `load(i)` -> int32 tokens [n], `name(i)` -> str."""
  size: int
  load: Callable[[int], np.ndarray]
  name: Callable[[int], str]
  description: str = "documents"

  def __len__(self):
    return self.size


def tokenize_document(tokenizer, text, name: str) -> np.ndarray:
  """str or bytes -> int32 tokens; raises one ValueError naming the document when it is not valid
  UTF-8 or has fewer than 2 tokens (nothing to predict)."""
  if isinstance(text, np.ndarray) and text.dtype.kind in "SUO" and text.ndim == 0:
    text = text.item()
  if isinstance(text, (bytes, bytearray, memoryview)):
    try:
      text = bytes(text).decode("utf-8")
    except UnicodeDecodeError as e:
      raise ValueError(f"{name}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
  if not isinstance(text, str):
    raise ValueError(f"{name}: expected text (str or bytes), got {type(text).__name__}")
  tokens = np.asarray(tokenizer.encode(text), dtype=np.int32).reshape(-1)
  if len(tokens) < 2:
    raise ValueError(f"{name}: {len(tokens)} token(s); a document needs at least 2 tokens (the "
                     "first token is only context, every later one a target)")
  return tokens


def epoch_order(num_docs: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
  if not shuffle:
    return np.arange(num_docs)
  return np.random.default_rng([seed, epoch]).permutation(num_docs)


class DocumentStream:
  """The batch source of the `text` task (see the module docstring)."""

  def __init__(self, corpus: DocumentCorpus, *, batch_size: int, seq_len: int, seed: int = 0,
               shuffle: bool = True, task: str = "text", source: str = ""):
    if len(corpus) == 0:
      raise ValueError(f"{corpus.description}: no documents")
    if batch_size <= 0 or seq_len <= 0:
      raise ValueError(f"batch_size={batch_size} and seq_len={seq_len} must be positive")
    self.corpus = corpus
    self.batch_size, self.seq_len = int(batch_size), int(seq_len)
    self.seed, self.shuffle = int(seed), bool(shuffle)
    self.task, self.source = task, source
    self._orders = {}
    self._cache = {}           # endless index -> tokens, for the documents now in a slot
    self._lengths = {}         # document -> token count (for replaying from step 0)
    self._reset_state()

  # The endless document order.
  def doc_at(self, k: int) -> int:
    epoch, i = divmod(int(k), len(self.corpus))
    if epoch not in self._orders:
      if len(self._orders) >= 4:       # slots span at most a few epochs at a time
        self._orders.clear()
      self._orders[epoch] = epoch_order(len(self.corpus), self.seed, epoch, self.shuffle)
    return int(self._orders[epoch][i])

  def _tokens(self, k: int) -> np.ndarray:
    if k not in self._cache:
      doc = self.doc_at(k)
      tokens = np.asarray(self.corpus.load(doc), dtype=np.int32)
      if len(tokens) < 2:
        raise ValueError(f"{self.corpus.name(doc)}: {len(tokens)} token(s); a document needs at "
                         "least 2 tokens")
      self._cache[k] = tokens
      self._lengths[doc] = len(tokens)
    return self._cache[k]

  def _length(self, k: int) -> int:
    doc = self.doc_at(k)
    if doc not in self._lengths:
      self._lengths[doc] = len(self.corpus.load(doc))
    return self._lengths[doc]

  def _reset_state(self):
    self._step = 0
    self._slots = [[b, 0] for b in range(self.batch_size)]   # [endless doc index, token offset]
    self._next_doc = self.batch_size

  def _advance(self, lengths):
    for slot, n in zip(self._slots, lengths):
      slot[1] += self.seq_len
      if slot[1] >= n - 1:              # no target left: the next document takes this slot
        slot[0], slot[1] = self._next_doc, 0
        self._next_doc += 1
    self._step += 1
    live = {k for k, _ in self._slots}
    self._cache = {k: v for k, v in self._cache.items() if k in live}

  def _seek(self, step: int):
    if step < self._step:
      self._reset_state()
    while self._step < step:            # replay: only document lengths are needed
      self._advance([self._length(k) for k, _ in self._slots])

  def batch(self, step: int) -> dict:
    """The batch of training step `step`; advances the stream past it."""
    self._seek(int(step))
    b, t = self.batch_size, self.seq_len
    out = {"inputs": np.zeros((b, t), np.int32), "targets": np.zeros((b, t), np.int32),
           "weights": np.zeros((b, t), np.float32), "positions": np.zeros((b, t), np.int32),
           "reset": np.zeros((b,), bool)}
    lengths = []
    for row, (k, offset) in enumerate(self._slots):
      tokens = self._tokens(k)
      window = tokens[offset:offset + t + 1]
      n = len(window) - 1               # targets in this sequence (1..T)
      out["inputs"][row, :n] = window[:-1]
      out["targets"][row, :n] = window[1:]
      out["weights"][row, :n] = 1.0
      out["positions"][row] = np.arange(offset, offset + t, dtype=np.int32)
      out["reset"][row] = offset == 0
      lengths.append(len(tokens))
    self._advance(lengths)
    return out

  def position(self, step: int) -> dict:
    """JSON data position before training step `step` (saved with the checkpoint of `step`)."""
    self._seek(int(step))
    return {"task": self.task, "source": self.source, "seed": self.seed,
            "batch_size": self.batch_size, "seq_len": self.seq_len, "shuffle": self.shuffle,
            "num_docs": len(self.corpus), "data_step": self._step, "next_doc": self._next_doc,
            "slots": [[int(k), int(o)] for k, o in self._slots]}

  def restore(self, position: dict):
    """Resumes exactly at a saved `position` (refuses one saved with another data setup)."""
    expected = self.position(0)
    for key in ("task", "source", "seed", "batch_size", "seq_len", "shuffle", "num_docs"):
      if position.get(key) != expected[key]:
        raise ValueError(f"the checkpoint's data position has {key}={position.get(key)!r} but this "
                         f"run's data has {expected[key]!r}: resume with the same data settings")
    slots = position["slots"]
    if len(slots) != self.batch_size:
      raise ValueError(f"the checkpoint's data position has {len(slots)} slots, not {self.batch_size}")
    self._step = int(position["data_step"])
    self._slots = [[int(k), int(o)] for k, o in slots]
    self._next_doc = int(position["next_doc"])
    self._cache = {}
