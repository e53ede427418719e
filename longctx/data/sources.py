"""Training data sources by task name. A source is a pure function of (seed, step): resuming at a
step gives exactly the batches an uninterrupted run would have seen, and the saved data position is
just that step."""
import numpy as np

from longctx.data import niah, passkey
from longctx.data.tokenizers import make_tokenizer

TASKS = ("passkey", "niah")


class PasskeySource:
  """Fixed-length passkey prompts (Infini/Landmark Appendix B format) with the loss on the key."""

  def __init__(self, data_cfg):
    self.cfg = data_cfg

  def batch(self, step: int) -> dict:
    rng = np.random.default_rng([self.cfg.seed, step])
    out = passkey.training_batch(rng, self.cfg.batch_size, self.cfg.seq_len, self.cfg.key_len,
                                 depth_range=tuple(self.cfg.depth_range),
                                 other_weight=self.cfg.other_weight)
    # Each example is its own document: memory starts fresh every step.
    out["reset"] = np.ones((self.cfg.batch_size,), bool)
    return out

  def position(self, step: int) -> dict:
    return {"task": "passkey", "seed": int(self.cfg.seed), "data_step": int(step)}


class NiahSource:
  """S-NIAH prompts (RULER single needle, longctx/data/niah.py) with the loss on the answer."""

  def __init__(self, data_cfg):
    self.cfg = data_cfg
    n = data_cfg.niah
    self.haystack = niah.make_haystack(n.haystack, tuple(n.files), make_tokenizer(data_cfg.tokenizer))

  def batch(self, step: int) -> dict:
    rng = np.random.default_rng([self.cfg.seed, step])
    n = self.cfg.niah
    out = niah.training_batch(rng, self.cfg.batch_size, self.cfg.seq_len, tuple(n.needles),
                              self.haystack, n.digits, depth_range=tuple(self.cfg.depth_range),
                              other_weight=self.cfg.other_weight)
    out["reset"] = np.ones((self.cfg.batch_size,), bool)
    return out

  def position(self, step: int) -> dict:
    return {"task": "niah", "seed": int(self.cfg.seed), "data_step": int(step)}


def make_train_source(cfg):
  if cfg.data.task == "passkey":
    return PasskeySource(cfg.data)
  if cfg.data.task == "niah":
    return NiahSource(cfg.data)
  raise ValueError(f"data.task={cfg.data.task!r} is not one of {TASKS}")
