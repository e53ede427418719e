"""Metric writers: metrics.jsonl, TensorBoard event files (tensorboardX, no TensorFlow), console."""
import json
import os
import time

from absl import logging


class MetricWriter:
  """Writes scalars to <workdir>/metrics.jsonl and <workdir>/tb (TensorBoard)."""

  def __init__(self, workdir: str):
    from tensorboardX import SummaryWriter  # imported here: only the trainer needs it
    os.makedirs(workdir, exist_ok=True)
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
    self._tb = SummaryWriter(os.path.join(workdir, "tb"))

  def write(self, step: int, scalars: dict, prefix: str = "train"):
    record = {"step": int(step), **{f"{prefix}/{k}": float(v) for k, v in scalars.items()}}
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    for k, v in scalars.items():
      self._tb.add_scalar(f"{prefix}/{k}", float(v), int(step))

  def close(self):
    self._jsonl.close()
    self._tb.close()


class ProgressLine:
  """One console line per log interval with step rate and ETA."""

  def __init__(self, total_steps: int, start_step: int):
    self.total = total_steps
    self.start_step = start_step
    self.t0 = time.time()

  def report(self, step: int, scalars: dict):
    done = step - self.start_step
    elapsed = time.time() - self.t0
    eta = elapsed / max(done, 1) * (self.total - step)
    text = " ".join(f"{k}={v:.4g}" for k, v in scalars.items())
    logging.info("step %d/%d %s | %.1f min elapsed, ETA %.1f min", step, self.total, text,
                 elapsed / 60, eta / 60)
