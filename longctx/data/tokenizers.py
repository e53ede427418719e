"""Tokenizers: text <-> int32 token ids.

The byte tokenizer is the default because it needs no vocabulary file, every string has exactly one
encoding, and a cut between any two tokens is a valid place to stop a text: the passkey generator
relies on this to hit an exact token count. `SentencePieceTokenizer` loads a trained model file
(scripts/train_tokenizer.py trains one) through the optional `sentencepiece` package
(`pip install 'longctx[data]'`).

Every tokenizer also gives `token_bytes` [V]: how many UTF-8 bytes of text each token stands for,
so language-model evaluation can report bits per byte, which compares across tokenizers.
"""
import os
from typing import Protocol, runtime_checkable

import numpy as np

TOKENIZER_NAMES = ("bytes", "sentencepiece")


@runtime_checkable
class Tokenizer(Protocol):
  """What data code needs from a tokenizer; no inheritance required."""

  vocab_size: int
  token_bytes: np.ndarray   # [V] int64: UTF-8 bytes of text each token stands for
  eos_id: int               # end-of-text token (ends a generated summary)

  def encode(self, text) -> np.ndarray:
    """str (or bytes) -> int32 ids [T]."""
    ...

  def decode(self, ids) -> str:
    """ids [T] -> str; never raises on ids that do not form valid text."""
    ...


class ByteTokenizer:
  """UTF-8 bytes as tokens: vocabulary 256, no special tokens (none are needed: examples are
  fixed-length and the loss is masked with explicit weights). Summarisation needs an end marker:
  `eos_id` is byte 0 (NUL), which never occurs in text (longctx.data.booksum refuses text with NUL)."""

  vocab_size = 256
  name = "bytes"
  eos_id = 0
  token_bytes = np.ones(256, np.int64)

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


class SentencePieceTokenizer:
  """A trained SentencePiece model (.model file) behind the `Tokenizer` protocol.

  encode takes str, or bytes that must be valid UTF-8 (SentencePiece works on text; invalid bytes
  raise a ValueError instead of being replaced silently). `token_bytes` counts each piece's text
  with the word-boundary mark U+2581 as one space and byte-fallback pieces <0xNN> as one byte;
  control and unknown pieces count 0. Decision: with the model's default dummy prefix the first
  piece of a text carries a space the text does not have, so bits per byte over a document is
  computed on at most one byte more than the text: negligible over long documents, and exact for
  models trained by scripts/train_tokenizer.py (no dummy prefix).
  """

  name = "sentencepiece"

  def __init__(self, model_path: str):
    try:
      import sentencepiece as spm
    except ImportError:
      raise ValueError("data.tokenizer='sentencepiece' needs the sentencepiece package: "
                       "pip install 'longctx[data]'") from None
    model_path = os.fspath(model_path)
    if not model_path:
      raise ValueError("data.tokenizer='sentencepiece' needs data.tokenizer_path (a .model file; "
                       "scripts/train_tokenizer.py trains one)")
    if not os.path.isfile(model_path):
      raise ValueError(f"data.tokenizer_path={model_path!r}: no such SentencePiece model file")
    self.model_path = model_path
    self._sp = spm.SentencePieceProcessor()
    try:
      self._sp.Load(model_path)
    except (OSError, RuntimeError) as e:
      raise ValueError(f"data.tokenizer_path={model_path!r} is not a SentencePiece model ({e})") from None
    self.vocab_size = int(self._sp.GetPieceSize())
    self.eos_id = int(self._sp.eos_id())
    counts = np.zeros(self.vocab_size, np.int64)
    for i in range(self.vocab_size):
      if self._sp.IsControl(i) or self._sp.IsUnknown(i):
        continue
      if self._sp.IsByte(i):
        counts[i] = 1
      else:
        counts[i] = len(self._sp.IdToPiece(i).replace("\u2581", " ").encode("utf-8"))
    self.token_bytes = counts

  def encode(self, text) -> np.ndarray:
    if isinstance(text, (bytes, bytearray, memoryview)):
      try:
        text = bytes(text).decode("utf-8")
      except UnicodeDecodeError as e:
        raise ValueError(f"SentencePieceTokenizer.encode: bytes are not valid UTF-8 ({e.reason} at "
                         f"byte {e.start})") from None
    if not isinstance(text, str):
      raise ValueError(f"SentencePieceTokenizer.encode expects str or bytes, got {type(text).__name__}")
    return np.asarray(self._sp.EncodeAsIds(text), dtype=np.int32).reshape(-1)

  def decode(self, ids) -> str:
    ids = np.asarray(ids)
    if ids.ndim != 1:
      raise ValueError(f"SentencePieceTokenizer.decode expects a 1-D sequence of ids, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
      raise ValueError(f"SentencePieceTokenizer.decode: ids must lie in [0, {self.vocab_size}), "
                       f"got min {ids.min()} max {ids.max()}")
    return self._sp.DecodeIds([int(i) for i in ids])

  def __repr__(self):
    return f"SentencePieceTokenizer({self.model_path!r})"


def make_tokenizer(name: str, path: str = "") -> Tokenizer:
  """Tokenizer by config name (config.data.tokenizer) and model file (config.data.tokenizer_path)."""
  if name == "bytes":
    return ByteTokenizer()
  if name == "sentencepiece":
    return SentencePieceTokenizer(path)
  raise ValueError(f"data.tokenizer={name!r} is not one of {TOKENIZER_NAMES}")


def tokenizer_from_config(data_cfg) -> Tokenizer:
  return make_tokenizer(data_cfg.tokenizer, data_cfg.get("tokenizer_path", ""))
