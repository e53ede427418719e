"""BookSum summarisation (Kryscinski et al. 2021; Infini-attention Table 4) through tfds's `booksum`
builder, and ROUGE with rouge-score.

Data preparation (once; the builder reads the manual folder with tf.io.gfile, so this step needs
TensorFlow): follow the builder's instructions (clone salesforce/booksum and run its steps 1-3, unzip
all_chapterized_books into the same folder), then
  tfds build booksum --config=book --manual_dir=$MANUAL --file_format=array_record --data_dir=$DATA
Training and evaluation then read `tfds.data_source('booksum/book')` without TensorFlow (features
`document` and `summary`, text).

Example layout (tokens):   document | SEPARATOR | summary | EOS
- Prompt = the document followed by SEPARATOR ("\n\nSummary:\n"); target = the summary followed by
  the tokenizer's end-of-text token (byte NUL for bytes; text containing NUL is refused), so decoding
  knows where to stop.
- Loss weights: `target_weight` (1) on the target tokens, `prompt_weight` (default 0: the document
  is masked out of the loss) on the prompt, 0 on padding.
- Training length (Infini fine-tunes at 32K input, evaluates at 500K): an example is exactly
  seq_len + 1 tokens. A document longer than its room keeps its FIRST tokens (the cut is
  documented here and counted in `training_example(...).truncated`); the target is never cut unless
  it alone leaves less than `min_prompt_tokens` (default a quarter of the example, and at least the
  separator plus one document token) for the prompt, in which case it is cut to leave that much
  (counted too). Short examples are padded at the end with weight 0.
- Order: examples in a permutation per epoch, rng([seed, epoch]); a batch is a pure function of the
  step (each example is its own document: reset is True for every slot every step).
"""
import dataclasses

import numpy as np

from longctx.data.pg19 import tfds_source

SEPARATOR = "\n\nSummary:\n"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@dataclasses.dataclass(frozen=True, eq=False)
class SummaryExample:
  tokens: np.ndarray        # [seq_len + 1] int32: prompt, target, padding
  weights: np.ndarray       # [seq_len] float32: loss weight of each target token (tokens[1:])
  prompt_len: int
  target_len: int
  truncated: bool           # the document (or, rarely, the target) was cut to fit


def _check_text(text, name):
  if isinstance(text, np.ndarray) and text.ndim == 0:
    text = text.item()
  if isinstance(text, (bytes, bytearray)):
    try:
      text = bytes(text).decode("utf-8")
    except UnicodeDecodeError as e:
      raise ValueError(f"{name}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
  if not isinstance(text, str):
    raise ValueError(f"{name}: expected text, got {type(text).__name__}")
  if "\x00" in text:
    raise ValueError(f"{name}: contains NUL, which the byte tokenizer uses as end of text")
  return text


def prompt_tokens(tokenizer, document, name="document") -> np.ndarray:
  """The whole prompt: document then SEPARATOR, int32."""
  document = _check_text(document, name)
  if not document:
    raise ValueError(f"{name}: empty document")
  return np.concatenate([np.asarray(tokenizer.encode(document), np.int32),
                         np.asarray(tokenizer.encode(SEPARATOR), np.int32)])


def target_tokens(tokenizer, summary, name="summary") -> np.ndarray:
  """The summary then the end-of-text token, int32."""
  summary = _check_text(summary, name)
  if not summary:
    raise ValueError(f"{name}: empty summary")
  if tokenizer.eos_id < 0:
    raise ValueError("the tokenizer has no end-of-text token (eos_id < 0); summarisation needs one")
  return np.concatenate([np.asarray(tokenizer.encode(summary), np.int32),
                         np.asarray([tokenizer.eos_id], np.int32)])


def training_example(tokenizer, document, summary, seq_len: int, *, prompt_weight: float = 0.0,
                     target_weight: float = 1.0, min_prompt_tokens: int = 0,
                     name="example") -> SummaryExample:
  """One example of exactly seq_len + 1 tokens (see the module docstring for the cuts)."""
  total = seq_len + 1
  sep = np.asarray(tokenizer.encode(SEPARATOR), np.int32)
  # The prompt (document + separator) keeps at least min_prompt tokens, one of them document.
  min_prompt = max(len(sep) + 1, min_prompt_tokens or total // 4)
  doc = prompt_tokens(tokenizer, document, f"{name} document")[:-len(sep)]
  target = target_tokens(tokenizer, summary, f"{name} summary")
  if min_prompt + 1 > total:
    raise ValueError(f"seq_len={seq_len} is too short for a summarisation example")
  truncated = False
  if len(target) > total - min_prompt:
    target, truncated = target[:total - min_prompt], True
  room = total - len(target) - len(sep)
  if len(doc) > room:
    doc, truncated = doc[:room], True
  prompt = np.concatenate([doc, sep])
  tokens = np.zeros(total, np.int32)
  used = len(prompt) + len(target)
  tokens[:used] = np.concatenate([prompt, target])
  # weights[i] scores predicting tokens[i + 1].
  weights = np.zeros(seq_len, np.float32)
  weights[:len(prompt) - 1] = prompt_weight
  weights[len(prompt) - 1:used - 1] = target_weight
  return SummaryExample(tokens=tokens, weights=weights, prompt_len=len(prompt),
                        target_len=len(target), truncated=truncated)


class BookSumSource:
  """The `booksum` training task: data.source 'tfds' (builder data.tfds_name, default
  'booksum/book') or 'local' (a JSONL file at data.path with {"document", "summary"} per line)."""

  def __init__(self, data_cfg, tokenizer, examples):
    self.cfg = data_cfg
    self.tokenizer = tokenizer
    self.examples = examples            # random access: examples[i] -> (document, summary)
    if len(examples) == 0:
      raise ValueError("data: the booksum split has no examples")

  def batch(self, step: int) -> dict:
    b, t = self.cfg.batch_size, self.cfg.seq_len
    n = len(self.examples)
    rows = []
    for slot in range(b):
      k = step * b + slot
      epoch, i = divmod(k, n)
      index = int(np.random.default_rng([self.cfg.seed, epoch]).permutation(n)[i])
      document, summary = self.examples[index]
      rows.append(training_example(self.tokenizer, document, summary, t,
                                   prompt_weight=self.cfg.booksum_prompt_weight,
                                   name=f"booksum example {index}"))
    return {"inputs": np.stack([r.tokens[:-1] for r in rows]),
            "targets": np.stack([r.tokens[1:] for r in rows]),
            "weights": np.stack([r.weights for r in rows]),
            "reset": np.ones((b,), bool)}

  def position(self, step: int) -> dict:
    return {"task": "booksum", "seed": int(self.cfg.seed), "data_step": int(step)}


class TfdsPairs:
  """(document, summary) pairs of a tfds summarisation split, read on demand."""

  def __init__(self, name, split, data_dir=""):
    self.source = tfds_source(name, split, data_dir)

  def __len__(self):
    return len(self.source)

  def __getitem__(self, i):
    ex = self.source[i]
    return ex["document"], ex["summary"]


def load_jsonl_pairs(path):
  """A user's summarisation data: one {"document": str, "summary": str} JSON object per line."""
  import json
  pairs = []
  try:
    with open(path, "rb") as f:
      lines = f.read().split(b"\n")
  except OSError as e:
    raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None
  if lines and lines[-1] == b"":
    lines.pop()
  for number, raw in enumerate(lines, start=1):
    try:
      record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise ValueError(f"{path}:{number}: not a valid UTF-8 JSON line ({e})") from None
    if not isinstance(record, dict) or set(record) != {"document", "summary"}:
      raise ValueError(f'{path}:{number}: expected {{"document": ..., "summary": ...}}')
    pairs.append((record["document"], record["summary"]))
  if not pairs:
    raise ValueError(f"{path}: no examples")
  return pairs


def summary_pairs(source: str, *, tfds_name: str, split: str, data_dir: str = "", path: str = ""):
  if source == "tfds":
    return TfdsPairs(tfds_name, split, data_dir)
  if source == "local":
    if not path:
      raise ValueError("booksum with source 'local' needs a JSONL path")
    return load_jsonl_pairs(path)
  raise ValueError(f"booksum source {source!r} is not one of ('tfds', 'local')")


def rouge_scores(prediction: str, reference: str) -> dict:
  """ROUGE-1/2/L F-measures (x100, rouge-score with Porter stemming) and their geometric mean
  ("Overall" in Infini Table 4)."""
  try:
    from rouge_score import rouge_scorer
  except ImportError:
    raise ValueError("ROUGE needs rouge-score: pip install 'longctx[data]'") from None
  scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
  scores = scorer.score(reference, prediction)
  out = {k: 100.0 * scores[k].fmeasure for k in ROUGE_TYPES}
  out["overall"] = geometric_mean([out[k] for k in ROUGE_TYPES])
  return out


def geometric_mean(values) -> float:
  values = np.asarray(values, np.float64)
  if np.any(values <= 0):
    return 0.0
  return float(np.exp(np.mean(np.log(values))))
