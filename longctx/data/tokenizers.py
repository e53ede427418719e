"""Tokenizers: text <-> int32 token ids.

The byte tokenizer is the default because it needs no vocabulary file, every string has exactly one
encoding, and a cut between any two tokens is a valid place to stop a text: the passkey generator
relies on this to hit an exact token count. A SentencePiece tokenizer can be added later by
implementing the same `Tokenizer` protocol (vocab_size, encode, decode) and registering a name in
`make_tokenizer`.
"""
from typing import Protocol, runtime_checkable

import numpy as np

TOKENIZER_NAMES = ("bytes",)


@runtime_checkable
class Tokenizer(Protocol):
  """What data code needs from a tokenizer; no inheritance required."""

  vocab_size: int

  def encode(self, text) -> np.ndarray:
    """str (or bytes) -> int32 ids [T]."""
    ...

  def decode(self, ids) -> str:
    """ids [T] -> str; never raises on ids that do not form valid text."""
    ...


class ByteTokenizer:
  """UTF-8 bytes as tokens: vocabulary 256, no special tokens (none are needed: examples are
  fixed-length and the loss is masked with explicit weights)."""

  vocab_size = 256
  name = "bytes"

  def encode(self, text) -> np.ndarray:
    """str -> its UTF-8 bytes as int32 [T]; bytes-like objects are taken as already encoded."""
    if isinstance(text, str):
      data = text.encode("utf-8")
    elif isinstance(text, (bytes, bytearray, memoryview)):
      data = bytes(text)
    else:
      raise ValueError(f"ByteTokenizer.encode expects str or bytes, got {type(text).__name__}")
    return np.frombuffer(data, dtype=np.uint8).astype(np.int32)

  def decode(self, ids) -> str:
    """int ids [T] -> str; invalid UTF-8 (e.g. a sequence cut inside a multi-byte character, or a
    model's bad guess) becomes U+FFFD instead of raising, so evaluation can always print outputs."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
      raise ValueError(f"ByteTokenizer.decode expects a 1-D sequence of ids, got shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
      raise ValueError(f"ByteTokenizer.decode expects integer ids, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
      raise ValueError(f"ByteTokenizer.decode: ids must lie in [0, {self.vocab_size}), "
                       f"got min {ids.min()} max {ids.max()}")
    return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

  def __repr__(self):
    return "ByteTokenizer()"


def make_tokenizer(name: str) -> Tokenizer:
  """Tokenizer by config name (e.g. config.data.tokenizer)."""
  if name == "bytes":
    return ByteTokenizer()
  raise ValueError(f"tokenizer {name!r} is not one of {TOKENIZER_NAMES}")
