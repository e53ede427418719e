"""S-NIAH: RULER's single needle in a haystack (Hsieh et al. 2024; Titans Table 2: PK, N, W).

  <prefix> <haystack, P tokens> <needle> <haystack, F - P tokens> <question> | <answer>

Needle types (`NEEDLE_TYPES`):
  passkey  "The pass key is {v}. Remember it. {v} is the pass key."  v: `digits` random digits
           question "What is the pass key? The pass key is"           (RULER S-NIAH-1)
  number   "One of the special magic numbers for {key} is: {v}."      v: `digits` random digits
  word     "One of the special magic words for {key} is: {v}."        v: a random word
           question "What is the special magic {number|word} for {key} mentioned in the provided
           text? The special magic {number|word} for {key} mentioned in the provided text is"
  key: a random "adjective-noun" pair (RULER draws words the same way).
Haystacks (`HAYSTACKS`):
  noise    "The grass is green. The sky is blue. ..." repeated (the passkey filler), from its start
           (phase 0) or, in training with random_filler_phase, from a random token of its cycle
  files    text read from local files given by path (e.g. essays, as RULER's Paul Graham
           haystack), joined with newlines; each example reads a window of it at a random offset.
           Files holding fewer tokens than a haystack needs are an error (nothing is repeated).

Decisions (papers.md 2(e) item 7: the paper's RULER configuration is unstated): the answer is the
value only, the space before it ends the prompt (as data/passkey.py); the needle goes at the
sentence boundary of the haystack nearest depth * F (a boundary: after a token that ends in
. ! ? or a newline; the haystack's ends always count); values and keys of an evaluation example
depend only on (seed, needle type), so every cell of a length x depth grid sees the same needles.
"""
import dataclasses
import os
from typing import Optional, Sequence

import numpy as np

from longctx.data import passkey
from longctx.data.tokenizers import ByteTokenizer, Tokenizer

NEEDLE_TYPES = ("passkey", "number", "word")
HAYSTACKS = ("noise", "files")
SEP = " "

_MAGIC_PREFIX = ("Some special magic {kinds} are hidden within the following text. Make sure to "
                 "memorize it. I will quiz you about the {kinds} afterwards.")
_MAGIC_NEEDLE = "One of the special magic {kinds} for {key} is: {value}."
_MAGIC_QUESTION = ("What is the special magic {kind} for {key} mentioned in the provided text? "
                   "The special magic {kind} for {key} mentioned in the provided text is")
_KINDS = {"number": ("number", "numbers"), "word": ("word", "words")}

ADJECTIVES = (
    "able", "ancient", "bitter", "brave", "bright", "broken", "calm", "careful", "cheap", "clean",
    "clever", "cold", "curious", "dark", "deep", "dizzy", "dry", "eager", "early", "empty", "fair",
    "famous", "fancy", "fierce", "flat", "fresh", "gentle", "giant", "glad", "golden", "green",
    "happy", "heavy", "hollow", "honest", "huge", "humble", "icy", "jolly", "kind", "lazy",
    "little", "lively", "lonely", "loud", "lucky", "mighty", "modern", "narrow", "noisy", "odd",
    "old", "orange", "pale", "plain", "polite", "proud", "purple", "quick", "quiet", "rapid",
    "rare", "red", "rich", "rough", "round", "rusty", "sad", "salty", "sharp", "shiny", "short",
    "silent", "silly", "slow", "small", "smooth", "soft", "sour", "spicy", "steady", "strange",
    "strong", "sweet", "swift", "tall", "tame", "tender", "tiny", "tired", "vast", "warm", "weak",
    "wet", "wide", "wild", "wise", "young", "yellow", "zealous")
NOUNS = (
    "anchor", "apple", "arrow", "badge", "basket", "bell", "bicycle", "blanket", "bottle",
    "bridge", "brush", "bucket", "button", "camera", "candle", "canyon", "carpet", "castle",
    "cherry", "chimney", "circle", "cloud", "compass", "cookie", "copper", "cottage", "crystal",
    "desert", "diamond", "dolphin", "dragon", "drum", "eagle", "engine", "feather", "fence",
    "forest", "fountain", "garden", "glacier", "guitar", "hammer", "harbor", "helmet", "island",
    "jacket", "jungle", "kettle", "ladder", "lantern", "lemon", "library", "lizard", "magnet",
    "marble", "meadow", "mirror", "monkey", "mountain", "needle", "ocean", "orchard", "paddle",
    "painter", "parrot", "pebble", "pencil", "pepper", "piano", "pillow", "planet", "pocket",
    "puzzle", "rabbit", "ribbon", "river", "rocket", "saddle", "sailor", "shadow", "shovel",
    "silver", "spoon", "stamp", "statue", "storm", "summit", "teapot", "thunder", "tiger",
    "tower", "tunnel", "umbrella", "valley", "violin", "wagon", "window", "wizard", "zebra")


@dataclasses.dataclass(frozen=True, eq=False)
class NiahExample:
  tokens: np.ndarray        # [T] int32: prompt then answer
  answer_mask: np.ndarray   # [T] bool: True exactly on the answer tokens (the last ones)
  needle_type: str
  key: str
  answer: str
  depth: float
  needle_start: int         # token index where the needle (with its leading space) starts


def _check_choice(value, choices, field):
  if value not in choices:
    raise ValueError(f"{field}={value!r} is not one of {choices}")
  return value


def draw_needle(rng: np.random.Generator, needle_type: str, digits: int):
  """(key, value) of a needle: key an adjective-noun pair, value digits or a word."""
  _check_choice(needle_type, NEEDLE_TYPES, "needle_type")
  key = f"{ADJECTIVES[rng.integers(len(ADJECTIVES))]}-{NOUNS[rng.integers(len(NOUNS))]}"
  if needle_type == "word":
    value = NOUNS[rng.integers(len(NOUNS))]
  else:
    value = passkey.random_key(rng, digits)
  return key, value


def _pieces(needle_type, key, value, tokenizer):
  """Token arrays of prefix, needle, question (ending with the answer's space) and answer."""
  enc = lambda text: np.asarray(tokenizer.encode(text), np.int32).reshape(-1)
  if needle_type == "passkey":
    prefix, needle = passkey.PREFIX, passkey.KEY_SENTENCE.format(key=value)
    question = passkey.QUESTION
  else:
    kind, kinds = _KINDS[needle_type]
    prefix = _MAGIC_PREFIX.format(kinds=kinds)
    needle = _MAGIC_NEEDLE.format(kinds=kinds, key=key, value=value)
    question = _MAGIC_QUESTION.format(kind=kind, key=key)
  return enc(prefix), enc(SEP + needle), enc(SEP + question + SEP), enc(value)


class Haystack:
  """A token stream to cut haystacks from, with its sentence boundaries.

  noise: the passkey filler repeated (any length); files: the files' text (finite)."""

  def __init__(self, kind: str, tokenizer: Tokenizer, files: Sequence[str] = ()):
    _check_choice(kind, HAYSTACKS, "haystack")
    self.kind, self.tokenizer = kind, tokenizer
    if kind == "noise":
      self.unit, _ = passkey._filler_unit(tokenizer)
      self.tokens = None
    else:
      if not files:
        raise ValueError("haystack='files' needs at least one file path (data.niah.files / "
                         "evals.niah.files)")
      texts = []
      for path in files:
        try:
          with open(os.fspath(path), encoding="utf-8") as f:
            texts.append(f.read())
        except FileNotFoundError:
          raise ValueError(f"{path}: no such file (haystack text)") from None
        except UnicodeDecodeError as e:
          raise ValueError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
      self.tokens = np.asarray(tokenizer.encode(SEP + "\n".join(texts)), np.int32).reshape(-1)
      if not len(self.tokens):
        raise ValueError(f"haystack files {list(files)} are empty")
      self.files = tuple(files)
    ends = np.zeros(tokenizer.vocab_size, bool)
    for i in range(tokenizer.vocab_size):
      text = tokenizer.decode(np.array([i])).rstrip(" ")
      ends[i] = text.endswith((".", "!", "?", "\n"))
    self._ends_sentence = ends

  @property
  def cycle_length(self) -> int:
    """U, the noise's period in tokens (the range of a filler phase); files have none."""
    if self.tokens is not None:
      raise ValueError("a 'files' haystack has no filler cycle (it is read at random offsets)")
    return len(self.unit)

  def window(self, rng: Optional[np.random.Generator], n: int, filler_phase: int = 0) -> np.ndarray:
    """n tokens of haystack: noise from token filler_phase of its cycle, files from a random
    offset (rng)."""
    if self.tokens is None:
      return np.resize(np.roll(self.unit, -filler_phase), n)
    if filler_phase:
      raise ValueError(f"filler_phase={filler_phase} shifts the noise haystack; a 'files' haystack "
                       "is already read at random offsets")
    if n > len(self.tokens):
      raise ValueError(f"the haystack files {list(self.files)} hold {len(self.tokens)} tokens; "
                       f"this example needs {n} tokens of haystack (give more or longer files)")
    start = 0 if rng is None else int(rng.integers(0, len(self.tokens) - n + 1))
    return self.tokens[start:start + n]

  def boundaries(self, stream: np.ndarray) -> np.ndarray:
    """Indices i in [0, n] where a sentence may start (after a sentence end, or the ends)."""
    inner = np.nonzero(self._ends_sentence[stream[:-1]])[0] + 1 if len(stream) > 1 else []
    return np.unique(np.concatenate([[0, len(stream)], inner]).astype(np.int64))


def niah_prompt(total_tokens: int, depth: float, needle_type: str, key: str, value: str,
                haystack: Haystack, rng: Optional[np.random.Generator] = None,
                filler_phase: int = 0) -> NiahExample:
  """An S-NIAH example of exactly total_tokens tokens (prompt + answer); filler_phase in [0, U):
  the noise haystack starts at that token of its cycle (0: "The grass is green.")."""
  total_tokens = passkey._check_int(total_tokens, "total_tokens", 1)
  depth = passkey._check_unit(depth, "depth")
  filler_phase = passkey._check_int(filler_phase, "filler_phase", 0)
  if filler_phase and filler_phase >= haystack.cycle_length:
    raise ValueError(f"filler_phase={filler_phase} must be < {haystack.cycle_length} (the noise "
                     "haystack's cycle length)")
  prefix, needle, question, answer = _pieces(needle_type, key, value, haystack.tokenizer)
  fixed = len(prefix) + len(needle) + len(question) + len(answer)
  if total_tokens < fixed:
    raise ValueError(f"total_tokens={total_tokens} is too small: a {needle_type} needle's prefix, "
                     f"needle, question and answer already take {fixed} tokens")
  n_hay = total_tokens - fixed
  stream = haystack.window(rng, n_hay, filler_phase)
  bounds = haystack.boundaries(stream)
  split = int(bounds[np.argmin(np.abs(bounds - depth * n_hay))])
  tokens = np.concatenate([prefix, stream[:split], needle, stream[split:], question, answer])
  mask = np.zeros(total_tokens, bool)
  mask[total_tokens - len(answer):] = True
  assert len(tokens) == total_tokens
  return NiahExample(tokens=tokens.astype(np.int32), answer_mask=mask, needle_type=needle_type,
                     key=key, answer=value, depth=depth, needle_start=len(prefix) + split)


def min_tokens(needle_type: str, digits: int, tokenizer: Tokenizer) -> int:
  """A bound on the fixed part of an example (longest key and value of the word lists)."""
  key = max(ADJECTIVES, key=len) + "-" + max(NOUNS, key=len)
  value = max(NOUNS, key=len) if needle_type == "word" else "9" * digits
  return sum(len(p) for p in _pieces(needle_type, key, value, tokenizer))


def training_batch(rng: np.random.Generator, batch_size: int, seq_len: int, needle_types,
                   haystack: Haystack, digits: int, depth_range=(0.0, 1.0),
                   other_weight: float = 0.0, random_filler_phase: bool = False) -> dict:
  """A batch of S-NIAH examples for next-token training (each of seq_len + 1 tokens, a needle type
  drawn uniformly from needle_types): inputs, targets [B, T] int32, weights [B, T] float32.

  random_filler_phase (noise haystack only; not in RULER or Titans): each example's noise starts
  at a phase drawn uniformly from its cycle, as passkey.training_batch's option of the same name:
  at phase 0 every prompt of one length ends in the same text between a late needle and the
  question, a layout a model can learn instead of the retrieval. Off, the draws are as before."""
  if not isinstance(random_filler_phase, (bool, np.bool_)):
    raise ValueError(f"random_filler_phase={random_filler_phase!r} must be True or False")
  if random_filler_phase and haystack.kind != "noise":
    raise ValueError("random_filler_phase=True shifts the noise haystack; a 'files' haystack is "
                     "already read at random offsets")
  lo, hi = depth_range
  rows = []
  for _ in range(batch_size):
    needle_type = needle_types[rng.integers(len(needle_types))]
    key, value = draw_needle(rng, needle_type, digits)
    depth = float(rng.uniform(lo, hi))
    phase = int(rng.integers(0, haystack.cycle_length)) if random_filler_phase else 0
    ex = niah_prompt(seq_len + 1, depth, needle_type, key, value, haystack, rng,
                     filler_phase=phase)
    rows.append(passkey.next_token_arrays(ex.tokens, ex.answer_mask, other_weight))
  return {name: np.stack([r[name] for r in rows]) for name in ("inputs", "targets", "weights")}


_EVAL_STREAM = 0x51A4_0E7


def eval_example(length: int, depth: float, needle_type: str, seed: int, haystack: Haystack,
                 digits: int) -> NiahExample:
  """A deterministic evaluation example; the needle depends only on (seed, needle_type), the
  haystack window (files) on the seed too."""
  seed = passkey._check_int(seed, "seed", 0)
  _check_choice(needle_type, NEEDLE_TYPES, "needle_type")
  rng = np.random.default_rng([_EVAL_STREAM, seed, NEEDLE_TYPES.index(needle_type)])
  key, value = draw_needle(rng, needle_type, digits)
  return niah_prompt(length, depth, needle_type, key, value, haystack, rng)


def make_haystack(kind: str, files=(), tokenizer: Optional[Tokenizer] = None) -> Haystack:
  return Haystack(kind, tokenizer if tokenizer is not None else ByteTokenizer(), files)
