"""Workdir writers: config.json and its change log, metrics.jsonl, TensorBoard event files
(tensorboardX, no TensorFlow), console."""
import json
import os
import time

from absl import logging
from flax import traverse_util


def write_config(config_json: str, workdir: str) -> dict:
  """Writes <workdir>/config.json. When the workdir already holds a different config (a resume with
  overrides, e.g. more steps or a new training length), the changed fields are logged and appended
  to <workdir>/config_changes.jsonl, so a run trained under several configs says so. Returns the
  changes as {field: [old, new]} (empty on a fresh workdir or an identical config)."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  changes = {}
  if os.path.exists(path):
    with open(path) as f:
      old = traverse_util.flatten_dict(json.load(f), sep=".")
    new = traverse_util.flatten_dict(json.loads(config_json), sep=".")
    changes = {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new))
               if old.get(k) != new.get(k)}
  if changes:
    logging.warning("The config differs from the one in %s: %s", path,
                    "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changes.items()))
    with open(os.path.join(workdir, "config_changes.jsonl"), "a") as f:
      f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changes": changes}) + "\n")
  with open(path, "w") as f:
    f.write(config_json)
  return changes


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
