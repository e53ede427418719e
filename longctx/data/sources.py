"""Training data sources by task name. A source has `batch(step) -> dict` of numpy arrays and
`position(step) -> JSON dict` (saved with each checkpoint). Resuming at a step gives exactly the
batches an uninterrupted run would have seen: passkey and booksum are pure functions of (seed, step);
the `text` stream also has `restore(position)` (the train loop calls it with the checkpoint's saved
position) and otherwise replays itself from step 0.

Tasks:
  passkey   fixed-length passkey prompts (longctx.data.passkey)
  text      document streaming for language modelling (longctx.data.text) from data.source =
            'pg19' (tfds, split data.split) or 'local' (a folder of .txt files at data.path)
  booksum   summarisation (longctx.data.booksum) from data.source = 'booksum' (tfds
            'booksum/<data.booksum_config>') or 'local' (a JSONL file at data.path)
"""
import numpy as np

from longctx.data import niah, passkey, sorting
from longctx.data.tokenizers import make_tokenizer, tokenizer_from_config

TASKS = ("passkey", "sorting", "niah", "text", "booksum")
# Tasks whose batches are pure functions of (seed, step): the only ones a length curriculum
# (data.seq_len_schedule) can drive.
FRESH_EXAMPLE_TASKS = ("passkey", "sorting", "niah")
TEXT_SOURCES = ("pg19", "local")
BOOKSUM_SOURCES = ("booksum", "local")


def value_at(step: int, initial, schedule):
  """The value of a ((start_step, value), ...) schedule at `step`: that of the last entry whose
  start has come, `initial` before the first (data.seq_len_schedule, data.filler_weight_schedule)."""
  value = initial
  for start, scheduled in schedule:
    if step >= start:
      value = scheduled
  return value


def seq_len_at(data_cfg, step: int) -> int:
  """Training example length at `step` under data.seq_len_schedule."""
  return value_at(step, data_cfg.seq_len, data_cfg.seq_len_schedule)


def uses_filler_weights(data_cfg) -> bool:
  """Whether passkey batches carry write_weights (data.filler_weight_max or its schedule > 1)."""
  peaks = [data_cfg.filler_weight_max] + [r for _, r in data_cfg.filler_weight_schedule]
  return data_cfg.task == "passkey" and max(peaks) > 1


def filler_weight_max_at(data_cfg, step: int) -> float:
  """The largest filler write weight r at `step`: 1 before data.filler_weight_from_step, then
  data.filler_weight_max, replaced from each (step, r_max) of data.filler_weight_schedule on."""
  if step < data_cfg.filler_weight_from_step:
    return 1.0
  return float(value_at(step, data_cfg.filler_weight_max, data_cfg.filler_weight_schedule))


def document_resets(data_cfg, step: int) -> np.ndarray:
  """reset [B] for a step of fresh examples: all True (each example its own document) unless
  data.memory_carry_prob p > 0, where from data.memory_carry_from_step on each batch row keeps its
  memory with probability p (the train state carries it, stop-gradient). A row's memory then spans
  a run of prompts of geometric length (mean 1 / (1 - p)), each still trained on its own tokens.
  Drawn from its own stream, so the examples are the same with and without it."""
  resets = np.ones((data_cfg.batch_size,), bool)
  if data_cfg.memory_carry_prob > 0 and step >= data_cfg.memory_carry_from_step:
    rng = np.random.default_rng([data_cfg.seed, step, 1])
    resets = rng.uniform(size=data_cfg.batch_size) >= data_cfg.memory_carry_prob
  return resets


class PasskeySource:
  """Fixed-length passkey prompts (Infini/Landmark Appendix B format) with the loss on the key.

  data.prompt_steps K > 1 (not in the papers): from data.prompt_steps_from_step on, each batch row
  runs its own sequence of prompts of n * T tokens (T the step's length, n uniform in 1..K per
  prompt), and a prompt is fed over n consecutive steps: its chunk c (tokens c*T .. c*T + T) at the
  prompt's c-th step, with positions c*T + (0..T-1) and reset only at c = 0, so the memory the train
  state carries (stop-gradient) holds the key from an earlier step; the loss is on the answer, in
  the last chunk. Rows start and end prompts at different steps. Before that step every prompt is
  one step (the batches are exactly those of K = 1). A pure function of (seed, step) as before.

  data.prompt_steps_short_prob p > 0: each prompt is, with probability p (drawn from its own
  stream of (seed, row, start step), as n is), one step whose first data.prompt_steps_short_len tokens
  are a whole prompt; the tokens after its answer are padding (token 0, weight 0), which the
  causal model's loss cannot see, and the next step resets the row."""

  def __init__(self, data_cfg, block_len: int = 0):
    self.cfg = data_cfg
    self.block_len = block_len   # the model's block: data.cut_key_prob cuts a key copy at it
    self._starts = [[] for _ in range(data_cfg.batch_size)]  # per row: (start step, n) of prompts

  def _prompts(self, rng, batch_size: int, seq_len: int, step: int) -> dict:
    return passkey.training_batch(rng, batch_size, seq_len, self.cfg.key_len,
                                  depth_range=tuple(self.cfg.depth_range),
                                  other_weight=self.cfg.other_weight,
                                  filler_weight_max=filler_weight_max_at(self.cfg, step),
                                  filler_weight_profile=self.cfg.filler_weight_profile,
                                  random_filler_phase=self.cfg.random_filler_phase,
                                  end_depth_prob=self.cfg.end_depth_prob,
                                  cut_key_prob=self.cfg.cut_key_prob,
                                  cut_block_len=self.block_len)

  def batch(self, step: int) -> dict:
    if self.cfg.prompt_steps > 1 and step >= self.cfg.prompt_steps_from_step:
      return self._multi_step_batch(step)
    out = self._prompts(np.random.default_rng([self.cfg.seed, step]), self.cfg.batch_size,
                        seq_len_at(self.cfg, step), step)
    out["reset"] = document_resets(self.cfg, step)
    return out

  def prompt_at(self, row: int, step: int) -> tuple:
    """(start step, number of steps n) of the prompt that batch row `row` is fed at `step`
    (>= data.prompt_steps_from_step); each n is drawn from (seed, row, start step) alone."""
    if step < self.cfg.prompt_steps_from_step:
      raise ValueError(f"step {step} comes before data.prompt_steps_from_step="
                       f"{self.cfg.prompt_steps_from_step}: every prompt there is one step")
    starts = self._starts[row]
    while not starts or starts[-1][0] + starts[-1][1] <= step:
      start = starts[-1][0] + starts[-1][1] if starts else self.cfg.prompt_steps_from_step
      n = int(np.random.default_rng([self.cfg.seed, row, start, 3]).integers(
          1, self.cfg.prompt_steps + 1))
      starts.append((start, 1 if self.is_short_prompt(row, start) else n))
    return next((start, n) for start, n in reversed(starts) if start <= step)

  def is_short_prompt(self, row: int, start: int) -> bool:
    """Whether row `row`'s prompt starting at step `start` is a data.prompt_steps_short_len one."""
    p = self.cfg.prompt_steps_short_prob
    return p > 0 and np.random.default_rng([self.cfg.seed, row, start, 5]).uniform() < p

  def _multi_step_batch(self, step: int) -> dict:
    seq_len = seq_len_at(self.cfg, step)
    rows = []
    for row in range(self.cfg.batch_size):
      start, n = self.prompt_at(row, step)
      chunk = step - start
      rng = np.random.default_rng([self.cfg.seed, row, start, 4])
      if self.is_short_prompt(row, start):
        short = self._prompts(rng, 1, self.cfg.prompt_steps_short_len, start)
        pad = seq_len - self.cfg.prompt_steps_short_len
        whole = {name: np.pad(value, ((0, 0), (0, pad))) for name, value in short.items()}
      else:
        whole = self._prompts(rng, 1, n * seq_len, start)
      piece = {name: value[0, chunk * seq_len:(chunk + 1) * seq_len] for name, value in whole.items()}
      piece["positions"] = np.arange(chunk * seq_len, (chunk + 1) * seq_len, dtype=np.int32)
      piece["reset"] = np.bool_(chunk == 0)
      rows.append(piece)
    return {name: np.stack([r[name] for r in rows]) for name in rows[0]}

  def position(self, step: int) -> dict:
    return {"task": "passkey", "seed": int(self.cfg.seed), "data_step": int(step)}


class SortingSource:
  """infinity-former's sorting task (data/sorting.py): fresh documents of seq_len input tokens, the
  loss on the 20 sorted symbols; every example is its own document unless data.memory_carry_prob."""

  def __init__(self, data_cfg):
    self.cfg = data_cfg

  def batch(self, step: int) -> dict:
    out = sorting.batch(np.random.default_rng([self.cfg.seed, step]), self.cfg.batch_size,
                        seq_len_at(self.cfg, step))
    out["reset"] = document_resets(self.cfg, step)
    return out

  def position(self, step: int) -> dict:
    return {"task": "sorting", "seed": int(self.cfg.seed), "data_step": int(step)}


class NiahSource:
  """S-NIAH prompts (RULER single needle, longctx/data/niah.py) with the loss on the answer."""

  def __init__(self, data_cfg):
    self.cfg = data_cfg
    n = data_cfg.niah
    self.haystack = niah.make_haystack(n.haystack, tuple(n.files), make_tokenizer(data_cfg.tokenizer))

  def batch(self, step: int) -> dict:
    rng = np.random.default_rng([self.cfg.seed, step])
    n = self.cfg.niah
    out = niah.training_batch(rng, self.cfg.batch_size, seq_len_at(self.cfg, step), tuple(n.needles),
                              self.haystack, n.digits, depth_range=tuple(self.cfg.depth_range),
                              other_weight=self.cfg.other_weight,
                              random_filler_phase=self.cfg.random_filler_phase)
    out["reset"] = document_resets(self.cfg, step)
    return out

  def position(self, step: int) -> dict:
    return {"task": "niah", "seed": int(self.cfg.seed), "data_step": int(step)}



def check_tokenizer_fits(tokenizer, model_cfg):
  if tokenizer.vocab_size > model_cfg.vocab_size:
    raise ValueError(f"model.vocab_size={model_cfg.vocab_size} is smaller than the tokenizer's "
                     f"vocabulary ({tokenizer.vocab_size}, data.tokenizer={tokenizer.name!r})")


def text_corpus(source: str, *, split: str, path: str, data_dir: str, tokenizer, field="data"):
  """The DocumentCorpus of a text source ('pg19' split, or a 'local' folder)."""
  if source == "pg19":
    from longctx.data.pg19 import pg19_corpus
    return pg19_corpus(split, tokenizer, data_dir)
  if source == "local":
    from longctx.data.local_text import local_corpus
    if not path:
      raise ValueError(f"{field}.path is empty: {field}.source='local' reads a folder of .txt files")
    return local_corpus(path, tokenizer)
  raise ValueError(f"{field}.source={source!r} is not one of {TEXT_SOURCES}")


def make_train_source(cfg):
  data = cfg.data
  if data.task == "passkey":
    return PasskeySource(data, cfg.model.block_len)
  if data.task == "sorting":
    return SortingSource(data)
  if data.task == "niah":
    return NiahSource(data)
  if data.task == "text":
    from longctx.data.text import DocumentStream
    tokenizer = tokenizer_from_config(data)
    check_tokenizer_fits(tokenizer, cfg.model)
    corpus = text_corpus(data.source, split=data.split, path=data.path, data_dir=data.tfds_data_dir,
                         tokenizer=tokenizer)
    return DocumentStream(corpus, batch_size=data.batch_size, seq_len=data.seq_len, seed=data.seed,
                          shuffle=data.shuffle, task="text", source=data.source)
  if data.task == "booksum":
    from longctx.data import booksum
    tokenizer = tokenizer_from_config(data)
    check_tokenizer_fits(tokenizer, cfg.model)
    if data.source not in BOOKSUM_SOURCES:
      raise ValueError(f"data.source={data.source!r} is not one of {BOOKSUM_SOURCES} (task booksum)")
    pairs = booksum.summary_pairs("tfds" if data.source == "booksum" else "local",
                                  tfds_name=f"booksum/{data.booksum_config}", split=data.split,
                                  data_dir=data.tfds_data_dir, path=data.path)
    return booksum.BookSumSource(data, tokenizer, pairs)
  raise ValueError(f"data.task={data.task!r} is not one of {TASKS}")


def batch_fields(data_cfg) -> dict:
  """name -> (per-example shape: 'token' for [T] or 'example' for [], dtype) of a task's batches."""
  fields = {"inputs": ("token", np.int32), "targets": ("token", np.int32),
            "weights": ("token", np.float32), "reset": ("example", np.bool_)}
  if data_cfg.task == "text" or (data_cfg.task == "passkey" and data_cfg.prompt_steps > 1):
    fields["positions"] = ("token", np.int32)   # absolute positions in the document / prompt
  if uses_filler_weights(data_cfg):
    # From data.filler_weight_from_step on; the weighted step is the one to size.
    fields["write_weights"] = ("token", np.float32)
  return fields
