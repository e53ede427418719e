"""The passkey retrieval task (Landmark Attention; Infini-attention Appendix B; TransformerFAM Sec 3.2).

A prompt hides a random numeric key in a long run of repeated filler text and ends with a question
whose answer is the key:

  <prefix> <filler x P tokens> <key sentence> <filler, F - P tokens> <question> | <answer>

prefix   "There is an important info hidden inside a lot of irrelevant text. Find it and memorize
         them. I will quiz you about the important information there."
filler   "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
         repeated as one continuous stream
key      "The pass key is {key}. Remember it. {key} is the pass key."
question "What is the pass key? The pass key is"
answer   "{key}"

Pieces are joined by one space (each piece after the prefix starts with it). Decisions (the papers
leave them open):
- Leading space: the space before the key belongs to the PROMPT (the prompt ends "... is "), and the
  answer is the key's digits only. With a byte tokenizer a leading-space answer token would be
  trivially predictable and would inflate token-level accuracy (the papers' metric) by a free token.
- Depth: the filler region is one stream of F tokens (F = total - prefix - key sentence - question -
  answer); the key sentence is inserted at P, the sentence boundary of the stream nearest to
  depth * F (P <= F). So the key sentence starts within half a filler sentence of depth * F, and
  the text around it is made of whole sentences: depth 0 puts the key right after the prefix (this
  IS FAM's prompt, papers.md 1(c)), depth 1 right before the last (partial) sentence and the
  question (Infini's "end").
- Exact length: the stream is whole filler sentences followed by a partial sentence cut at a token
  boundary just before the question, so every example has exactly the requested number of tokens.
  Pieces are tokenized separately and concatenated, so any tokenizer keeps the cut exact.
- Filler phase: the stream starts at token `filler_phase` of the filler cycle (0: "The grass is
  green.", the papers' prompt and every evaluation prompt). At phase 0 the partial sentence before
  the question is set by the length alone, so every training prompt of one length ends in the same
  layout; training_batch(random_filler_phase=True) draws the phase per example so the text between
  a late key and the question varies (experiments/infini-attention attempt 20: a model trained at
  fixed phase read a depth-1 key at 95-97% in the layout of its training length and at 52-57% in
  another, whatever the memory).
- Evaluation keys depend only on (seed, key_len): every cell of a (length x depth) grid sees the
  same keys, so cells differ only in length and depth.

Everything is numpy and built by tiling token arrays, so a 1M-token prompt takes milliseconds.
"""
import dataclasses
import json
import math
import os
from typing import Optional

import numpy as np

from longctx.data.tokenizers import ByteTokenizer, Tokenizer

PREFIX = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
          "them. I will quiz you about the important information there.")
FILLER_SENTENCES = ("The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
                    "There and back again.")
KEY_SENTENCE = "The pass key is {key}. Remember it. {key} is the pass key."
QUESTION = "What is the pass key? The pass key is"
SEP = " "
TEMPLATES = ("infini", "fam")
DEPTHS = {"start": 0.0, "middle": 0.5, "end": 1.0}   # the papers' three named depths
JSONL_FIELDS = ("prompt", "answer")
_CUT_DRAWS = 1000   # training_batch(cut_key_prob=): draws before a layout without a cut is an error
_EVAL_STREAM = 0x9A55_4E7   # separates eval-key seeds from a training rng seeded with the same int


@dataclasses.dataclass(frozen=True, eq=False)
class PasskeyExample:
  """One passkey prompt followed by its answer."""
  tokens: np.ndarray        # [T] int32: prompt then answer
  answer_mask: np.ndarray   # [T] bool: True exactly on the answer tokens (the last ones)
  key: str
  depth: float              # the requested depth in [0, 1]
  key_start: int            # token index where the key sentence (with its leading space) starts

  @property
  def answer(self) -> str:
    return self.key


@dataclasses.dataclass(frozen=True, eq=False)
class PromptExample:
  """A user's prompt (from a JSONL file) followed by its answer."""
  tokens: np.ndarray        # [T] int32: prompt then answer
  answer_mask: np.ndarray   # [T] bool: True exactly on the answer tokens (the last ones)
  answer: str
  line: int                 # 1-based line of the JSONL file it came from


def _check_int(value, field: str, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"{field}={value!r} must be an integer")
  if value < minimum:
    raise ValueError(f"{field}={value} must be >= {minimum}")
  return int(value)


def _check_unit(value, field: str) -> float:
  """A float in [0, 1] (a depth or a probability)."""
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
    raise ValueError(f"{field}={value!r} must be a number in [0, 1]")
  value = float(value)
  if not 0.0 <= value <= 1.0:   # also rejects NaN
    raise ValueError(f"{field}={value} must lie in [0, 1]")
  return value


def _check_rng(rng):
  if not isinstance(rng, np.random.Generator):
    raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                     f"got {type(rng).__name__}")


def _encode(tokenizer: Tokenizer, text: str) -> np.ndarray:
  return np.asarray(tokenizer.encode(text), dtype=np.int32).reshape(-1)


def _fixed_pieces(key: str, tokenizer: Tokenizer):
  """Token arrays of the non-filler pieces: prefix, key sentence, question and answer.

  Every piece after the prefix starts with the separator, so the partial filler sentence cut just
  before the question still reads "... The sun is yell What is the pass key?"; the question also
  ends with one (the answer's leading space is part of the prompt).
  """
  return (_encode(tokenizer, PREFIX), _encode(tokenizer, SEP + KEY_SENTENCE.format(key=key)),
          _encode(tokenizer, SEP + QUESTION + SEP), _encode(tokenizer, key))


def _filler_unit(tokenizer: Tokenizer):
  """One cycle of the filler stream [U] and the offsets [5] where its sentences start."""
  sentences = [_encode(tokenizer, SEP + s) for s in FILLER_SENTENCES]
  offsets = np.cumsum([0] + [len(s) for s in sentences[:-1]])
  return np.concatenate(sentences), offsets


def filler_cycle_length(tokenizer: Optional[Tokenizer] = None) -> int:
  """U, the number of tokens of one cycle of the filler stream (the range of filler_phase)."""
  return len(_filler_unit(tokenizer if tokenizer is not None else ByteTokenizer())[0])


def min_passkey_tokens(key: str, tokenizer: Tokenizer) -> int:
  """Smallest total_tokens a prompt for `key` can have (no filler at all)."""
  return sum(len(p) for p in _fixed_pieces(key, tokenizer))


def passkey_prompt(total_tokens: int, depth: float, key: str, tokenizer: Tokenizer,
                   template: str = "infini", filler_phase: int = 0) -> PasskeyExample:
  """A passkey example of exactly `total_tokens` tokens (prompt + answer).

  depth in [0, 1] is where the key sentence starts as a fraction of the filler region (see the
  module docstring). template='fam' is FAM's prompt (no filler before the key), which requires
  depth == 0: any other depth would be silently ignored otherwise. filler_phase in [0, U): the
  filler stream starts at that token of its cycle (module docstring); the key still goes at a
  sentence boundary (or right after the prefix).
  """
  total_tokens = _check_int(total_tokens, "total_tokens", 1)
  depth = _check_unit(depth, "depth")
  if not isinstance(key, str) or not key:
    raise ValueError(f"key={key!r} must be a non-empty string")
  if template not in TEMPLATES:
    raise ValueError(f"template={template!r} is not one of {TEMPLATES}")
  if template == "fam" and depth != 0.0:
    raise ValueError(f"template='fam' puts the key right after the prefix: depth must be 0, got {depth}")
  prefix, key_sentence, question, answer = _fixed_pieces(key, tokenizer)
  fixed = len(prefix) + len(key_sentence) + len(question) + len(answer)
  if total_tokens < fixed:
    raise ValueError(f"total_tokens={total_tokens} is too small: prefix + key sentence + question + "
                     f"answer for key {key!r} already take {fixed} tokens")
  n_filler = total_tokens - fixed                                   # F
  unit, offsets = _filler_unit(tokenizer)
  u = len(unit)
  filler_phase = _check_int(filler_phase, "filler_phase", 0)
  if filler_phase >= u:
    raise ValueError(f"filler_phase={filler_phase} must be < {u} (the filler cycle's length)")
  # Sentence boundaries of the stream in [0, F] (and its start: depth 0 puts the key right after
  # the prefix whatever the phase); the key goes at the one nearest depth * F.
  cycles = np.arange(n_filler // u + 2, dtype=np.int64)
  bounds = (cycles[:, None] * u + (offsets[None, :] - filler_phase) % u).reshape(-1)
  bounds = np.union1d([0], bounds[bounds <= n_filler])               # sorted
  split = int(bounds[np.argmin(np.abs(bounds - depth * n_filler))])  # P
  stream = np.resize(np.roll(unit, -filler_phase), n_filler)        # [F], cycles through `unit`
  tokens = np.concatenate([prefix, stream[:split], key_sentence, stream[split:], question, answer])
  answer_mask = np.zeros(total_tokens, dtype=bool)
  answer_mask[total_tokens - len(answer):] = True
  assert len(tokens) == total_tokens
  return PasskeyExample(tokens=tokens.astype(np.int32, copy=False), answer_mask=answer_mask,
                        key=key, depth=depth, key_start=len(prefix) + split)


def key_copy_spans(example: PasskeyExample, tokenizer: Tokenizer) -> list:
  """Token spans [start, end) of the key's two copies in `example` ("The pass key is {key}.
  Remember it. {key} is the pass key.")."""
  key = _encode(tokenizer, example.key)
  sentence = _fixed_pieces(example.key, tokenizer)[1]
  hits = [i for i in range(len(sentence) - len(key) + 1)
          if np.array_equal(sentence[i:i + len(key)], key)]
  if len(hits) != 2:
    raise ValueError(f"the key {example.key!r} is tokenized differently inside the key sentence "
                     f"({len(hits)} copies found) by {type(tokenizer).__name__}: its copies cannot "
                     "be located")
  return [(example.key_start + i, example.key_start + i + len(key)) for i in hits]


def cut_key_copies(example: PasskeyExample, tokenizer: Tokenizer, block_len: int) -> list:
  """Indices (0 first, 1 second) of the key's copies that a block boundary (every block_len
  tokens) falls inside; empty when neither is cut."""
  return [i for i, (a, b) in enumerate(key_copy_spans(example, tokenizer))
          if a // block_len != (b - 1) // block_len]


def random_key(rng: np.random.Generator, key_len: int) -> str:
  """`key_len` random decimal digits, the first non-zero (so the key has exactly key_len digits)."""
  _check_rng(rng)
  key_len = _check_int(key_len, "key_len", 1)
  digits = rng.integers(0, 10, size=key_len)
  digits[0] = rng.integers(1, 10)
  return "".join(map(str, digits))


def next_token_arrays(tokens: np.ndarray, answer_mask: np.ndarray,
                      other_weight: float = 0.0) -> dict:
  """Next-token-prediction arrays from one example of T + 1 tokens.

  Returns inputs [T] int32, targets [T] int32 (inputs shifted by one) and weights [T] float32:
  1.0 where the target is an answer token, `other_weight` elsewhere.
  """
  tokens = np.asarray(tokens, dtype=np.int32)
  answer_mask = np.asarray(answer_mask, dtype=bool)
  if tokens.ndim != 1 or tokens.shape != answer_mask.shape or len(tokens) < 2:
    raise ValueError(f"tokens {tokens.shape} and answer_mask {answer_mask.shape} must be the same "
                     "1-D shape with at least 2 tokens")
  other_weight = _check_weight(other_weight)
  return dict(inputs=tokens[:-1], targets=tokens[1:],
              weights=np.where(answer_mask[1:], 1.0, other_weight).astype(np.float32))


def _check_weight(other_weight) -> float:
  if isinstance(other_weight, bool) or not isinstance(other_weight, (int, float, np.integer,
                                                                     np.floating)):
    raise ValueError(f"other_weight={other_weight!r} must be a number")
  other_weight = float(other_weight)
  if not (math.isfinite(other_weight) and other_weight >= 0.0):
    raise ValueError(f"other_weight={other_weight} must be finite and >= 0")
  return other_weight


FILLER_WEIGHT_PROFILES = ("uniform", "geometric")


def filler_write_weights(example: PasskeyExample, weight: float,
                         tokenizer: Optional[Tokenizer] = None,
                         profile: str = "uniform") -> np.ndarray:
  """[T] float32 write multiplicities: 1.0 on the prefix, the key sentence, the question and the
  answer (the pieces a prompt holds once, whatever its length); on each of the two filler spans a
  total of `weight` x its length, so the prompt's filler weighs what that of a prompt `weight`
  times as long would.

  profile 'uniform': every filler token weighs `weight`. 'geometric': a span of n tokens whose
  memory already holds mass S0 (the weighted tokens before it) gets weights 1 + (weight - 1) n u_i,
  u_i proportional to g^i with g = (1 + (weight - 1) n / S0)^(1/n), so the mass written so far
  grows by about the same factor per token. Why: the compressive memory is written once per
  block, under the state left by the blocks before; under a uniform weight a span's first blocks
  are written under a memory that holds almost nothing yet and still carry their full share of
  the mass (the first filler block of a 2K prompt at r = 512 carries 1/16 of a "1M" memory,
  written after the prefix alone; in a real 1M prompt that share is 1/8,192), which is what
  experiments/infini-attention attempt 15 measured in the upper layers. Both give exactly 1 at
  weight 1."""
  if profile not in FILLER_WEIGHT_PROFILES:
    raise ValueError(f"filler weight profile={profile!r} is not one of {FILLER_WEIGHT_PROFILES}")
  tokenizer = tokenizer if tokenizer is not None else ByteTokenizer()
  prefix, key_sentence, question, answer = _fixed_pieces(example.key, tokenizer)
  t = len(example.tokens)
  out = np.ones(t, np.float64)
  key_end = example.key_start + len(key_sentence)
  spans = ((len(prefix), example.key_start), (key_end, t - len(question) - len(answer)))
  for start, stop in spans:
    n = stop - start
    if n <= 0:
      continue
    if profile == "uniform":
      out[start:stop] = weight
      continue
    mass_before = out[:start].sum()  # S0 >= len(prefix) > 0
    excess = (weight - 1.0) * n
    # u_i = g^i / sum_j g^j, in log space so that large n * log g cannot overflow.
    log_g = np.log1p(excess / mass_before) / n
    log_u = log_g * np.arange(n)
    u = np.exp(log_u - log_u.max())
    out[start:stop] = 1.0 + excess * u / u.sum()
  return out.astype(np.float32)


def training_batch(rng: np.random.Generator, batch_size: int, seq_len: int, key_len: int,
                   depth_range=(0.0, 1.0), other_weight: float = 0.0,
                   tokenizer: Optional[Tokenizer] = None, filler_weight_max: float = 1.0,
                   filler_weight_profile: str = "uniform",
                   random_filler_phase: bool = False, end_depth_prob: float = 0.0,
                   cut_key_prob: float = 0.0, cut_block_len: int = 0) -> dict:
  """A batch of passkey examples for next-token training; deterministic given the rng's state.

  Each example has exactly seq_len + 1 tokens, a fresh random key of key_len digits and a depth
  drawn uniformly from depth_range (depth_range=(0, 0) gives FAM's prompt). Returns numpy arrays
    inputs  [B, T] int32
    targets [B, T] int32    inputs shifted by one
    weights [B, T] float32  1.0 where the target is an answer token, other_weight elsewhere
  with T = seq_len. Weighting the other tokens > 0 also trains plain language modelling of the filler.
  filler_weight_max > 1 adds
    write_weights [B, T] float32  per example a weight r, log-uniform in [1, filler_weight_max],
                                  on the filler tokens and 1 on the rest (filler_write_weights,
                                  spread over each filler span by filler_weight_profile)
  which a compressive memory (Infini) uses as each token's write multiplicity: the filler of a
  seq_len prompt then weighs in the memory what that of an r * seq_len prompt would (the filler is
  one periodic stream). Not in the paper; configs/passkey/infini.py says why.
  random_filler_phase: each example's filler stream starts at a phase drawn uniformly from the
  filler cycle (passkey_prompt's filler_phase), so the layout between a late key and the question
  is not the same in every prompt of one length. Off, the rng draws exactly what it drew before.
  end_depth_prob: each example's depth is 1 (the key sentence right before the question, in the
  answer's own block: a read of the local attention alone) with this probability, else drawn
  from depth_range. Uniform depths give that layout to 11% of 512-token and 1.4% of 2K-token
  prompts (the key must start in the last block's first few tokens); the evaluator's depth-1
  column is all of it. Not in the papers; 0 draws exactly what it drew before.
  cut_key_prob: with this probability an example's depth, key and phase are drawn again until a
  boundary of cut_block_len-token blocks falls inside a copy of the key (cut_key_copies): the
  layout a block-recurrent model reads worst, which uniform depths give to ~6% of 512-token and
  2K-token prompts while the evaluator's grid has it in 4 of 25 cells (2K / 32K at depth 0.75, 1M
  at 0.25 / 0.75). Not in the papers; 0 draws exactly what it drew before.
  """
  _check_rng(rng)
  batch_size = _check_int(batch_size, "batch_size", 1)
  seq_len = _check_int(seq_len, "seq_len", 1)
  key_len = _check_int(key_len, "key_len", 1)
  other_weight = _check_weight(other_weight)
  try:
    lo, hi = depth_range
  except (TypeError, ValueError):
    raise ValueError(f"depth_range={depth_range!r} must be a pair (low, high)") from None
  lo, hi = _check_unit(lo, "depth_range[0]"), _check_unit(hi, "depth_range[1]")
  if lo > hi:
    raise ValueError(f"depth_range={depth_range!r}: low must be <= high")
  if not (isinstance(filler_weight_max, (int, float, np.integer, np.floating))
          and math.isfinite(filler_weight_max) and filler_weight_max >= 1.0):
    raise ValueError(f"filler_weight_max={filler_weight_max!r} must be a finite number >= 1")
  if filler_weight_profile not in FILLER_WEIGHT_PROFILES:
    raise ValueError(f"filler_weight_profile={filler_weight_profile!r} is not one of "
                     f"{FILLER_WEIGHT_PROFILES}")
  tokenizer = tokenizer if tokenizer is not None else ByteTokenizer()
  needed = min_passkey_tokens("9" * key_len, tokenizer)
  if seq_len + 1 < needed:
    raise ValueError(f"seq_len={seq_len} is too small: a passkey example with key_len={key_len} "
                     f"needs seq_len + 1 >= {needed} tokens")
  if not isinstance(random_filler_phase, (bool, np.bool_)):
    raise ValueError(f"random_filler_phase={random_filler_phase!r} must be True or False")
  end_depth_prob = _check_unit(end_depth_prob, "end_depth_prob")
  cut_key_prob = _check_unit(cut_key_prob, "cut_key_prob")
  if cut_key_prob > 0:
    cut_block_len = _check_int(cut_block_len, "cut_block_len", 2)
  cycle = filler_cycle_length(tokenizer)
  rows = []
  for _ in range(batch_size):
    want_cut = cut_key_prob > 0 and rng.uniform() < cut_key_prob
    for _ in range(_CUT_DRAWS if want_cut else 1):
      depth = float(rng.uniform(lo, hi))
      if end_depth_prob > 0 and rng.uniform() < end_depth_prob:
        depth = 1.0
      key = random_key(rng, key_len)
      phase = int(rng.integers(0, cycle)) if random_filler_phase else 0
      ex = passkey_prompt(seq_len + 1, depth, key, tokenizer, filler_phase=phase)
      if not want_cut or cut_key_copies(ex, tokenizer, cut_block_len):
        break
    else:
      raise ValueError(f"cut_key_prob={cut_key_prob}: no {seq_len + 1}-token prompt in "
                       f"{_CUT_DRAWS} draws (depth_range={depth_range}, random_filler_phase="
                       f"{random_filler_phase}) has a key copy cut by a {cut_block_len}-token "
                       "block boundary")
    rows.append(next_token_arrays(ex.tokens, ex.answer_mask, other_weight))
    if filler_weight_max > 1.0:
      weight = float(np.exp(rng.uniform(0.0, np.log(filler_weight_max))))
      rows[-1]["write_weights"] = filler_write_weights(
          ex, weight, tokenizer, filler_weight_profile)[:-1]  # the inputs'
  return {name: np.stack([r[name] for r in rows]) for name in rows[0]}


def eval_example(length: int, depth: float, key_len: int, seed: int,
                 tokenizer: Optional[Tokenizer] = None, template: str = "infini") -> PasskeyExample:
  """One deterministic evaluation example of exactly `length` tokens (prompt + answer).

  The key depends only on (seed, key_len), not on length or depth.
  """
  length = _check_int(length, "length", 1)
  seed = _check_int(seed, "seed", 0)
  key = random_key(np.random.default_rng([_EVAL_STREAM, seed]), key_len)
  tokenizer = tokenizer if tokenizer is not None else ByteTokenizer()
  needed = min_passkey_tokens(key, tokenizer)
  if length < needed:
    raise ValueError(f"length={length} is too small: a passkey example with key_len={key_len} "
                     f"needs at least {needed} tokens")
  return passkey_prompt(length, depth, key, tokenizer, template=template)


def depth_grid(n: int = 11) -> tuple:
  """n evenly spaced depths from 0 to 1: n = 11 gives 0.0, 0.1, ..., 1.0.

  n must be odd and >= 3 so that the papers' start (0), middle (0.5) and end (1) are on the grid.
  """
  n = _check_int(n, "n", 3)
  if n % 2 == 0:
    raise ValueError(f"n={n} must be odd so that the grid contains the middle depth 0.5")
  return tuple(i / (n - 1) for i in range(n))


def load_jsonl_prompts(path, tokenizer: Tokenizer) -> list:
  """Reads a user's long prompts: one JSON object {"prompt": str, "answer": str} per line.

  Returns a list of PromptExample whose tokens are the prompt's tokens followed by the answer's
  (tokenized separately, so the answer is exactly the marked tokens; put any separating space in
  the prompt or the answer yourself). Every problem raises one ValueError naming the file and the
  1-based line: invalid UTF-8 or JSON, a line that is not an object, a missing, unknown or
  non-string field, an empty prompt (the first answer token would have no context to be predicted
  from), an empty answer, and blank lines (an error, not skipped, so a line number in a report
  always means the same example). A missing or empty file is an error too.
  """
  path = os.fspath(path)
  try:
    with open(path, "rb") as f:
      data = f.read()
  except FileNotFoundError:
    raise ValueError(f"{path}: no such file (expected a JSONL file of prompts)") from None
  except OSError as e:
    raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None
  lines = data.split(b"\n")
  if lines and lines[-1] == b"":
    lines.pop()   # the newline ending the last line does not start another line
  if not lines:
    raise ValueError(f"{path}: the file is empty (expected one JSON object per line)")
  examples = []
  for number, raw in enumerate(lines, start=1):
    where = f"{path}:{number}"
    try:
      text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
      raise ValueError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    if not text.strip():
      raise ValueError(f"{where}: blank line (blank lines are not allowed; every line must be a "
                       '{"prompt": ..., "answer": ...} object)')
    try:
      record = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
      raise ValueError(f"{where}: expected a JSON object with fields {JSONL_FIELDS}, "
                       f"got {type(record).__name__}")
    unknown = sorted(set(record) - set(JSONL_FIELDS))
    if unknown:
      raise ValueError(f"{where}: unknown field(s) {unknown}; allowed fields are {JSONL_FIELDS}")
    for field in JSONL_FIELDS:
      if field not in record:
        raise ValueError(f"{where}: missing field {field!r}")
      if not isinstance(record[field], str):
        raise ValueError(f"{where}: field {field!r} must be a string, "
                         f"got {type(record[field]).__name__}")
      if not record[field]:
        raise ValueError(f"{where}: field {field!r} is empty")
    prompt, answer = _encode(tokenizer, record["prompt"]), _encode(tokenizer, record["answer"])
    if not len(prompt) or not len(answer):
      raise ValueError(f"{where}: the prompt and the answer must each encode to at least one token")
    tokens = np.concatenate([prompt, answer])
    answer_mask = np.zeros(len(tokens), dtype=bool)
    answer_mask[len(prompt):] = True
    examples.append(PromptExample(tokens=tokens, answer_mask=answer_mask, answer=record["answer"],
                                  line=number))
  return examples
