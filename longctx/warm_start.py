"""Initialising a model from another run's checkpoint (`train.init_from`): fine-tuning.

TransformerFAM is a pretrained model fine-tuned into FAM (papers.md 1(b): Flan-PaLM + LoRA rank 64);
the same path serves any architecture change that keeps the layer weights (full -> bswa, bswa -> fam,
bswa -> infini). Rules, leaf by leaf on the parameter paths ('layers/0/attention/query/kernel'):
  - a parameter of the new model found in the source is taken from it; a different shape is an error;
  - a parameter missing from the source keeps its initial value only if one of its path components
    is listed in `train.init_from_fresh` (default: the LoRA factors, FAM's prompt and state norm: a
    pretrained model does not have); any other missing parameter is an error naming them all, so a
    wrong source or a typo does not leave half the model at random;
  - source parameters the new model lacks (e.g. a FAM prompt when going back to BSWA) are dropped
    and listed;
  - a source trained with LoRA is merged first (its `config.json` gives rank and alpha), so its
    fine-tuned weights are what the new model starts from.
Only the parameters are read: optimizer state, step and memory start fresh. A workdir that already
holds a checkpoint resumes from it and ignores `train.init_from`. What was loaded is written to
<workdir>/init_from.json.
"""
import json
import os

import jax
import numpy as np
from absl import logging

from longctx import checkpoint as ckpt_lib
from longctx.layers import lora


def _source_dirs(path: str):
  """(checkpoint directory, workdir holding config.json) for a workdir or its checkpoints/."""
  if not os.path.isdir(path):
    raise FileNotFoundError(f"train.init_from={path!r}: no such directory")
  sub = os.path.join(path, "checkpoints")
  if os.path.isdir(sub):
    return sub, path
  return path, os.path.dirname(os.path.abspath(path))


def _source_lora_scale(workdir: str, source: str) -> float:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"train.init_from={source!r}: the checkpoint holds LoRA factors, and merging them needs the "
        f"source run's rank and alpha from {path}, which does not exist")
  with open(path) as f:
    lora_cfg = json.load(f)["model"]["lora"]
  return lora.lora_scale(lora_cfg["rank"], lora_cfg["alpha"])


def load_source_params(source: str, step: int = -1):
  """The parameters of run `source` (a workdir or its checkpoints/ directory) at `step` (-1:
  latest), LoRA merged, as {path: numpy array}. Returns (flat params, step, whether LoRA merged)."""
  ckpt_dir, workdir = _source_dirs(source)
  reader = ckpt_lib.Checkpointer(ckpt_dir, async_save=False)
  try:
    if reader.latest_step() is None:
      raise FileNotFoundError(f"train.init_from={source!r}: no checkpoint in {ckpt_dir}")
    params, step = reader.restore_item(None if step < 0 else step, "params")
  finally:
    reader.close()
  merged = any(k.endswith("/lora_a") for k in ckpt_lib.flat_leaves(params))
  if merged:
    params = lora.merge_lora_params(params, _source_lora_scale(workdir, source))
  return ckpt_lib.flat_leaves(params), step, merged


def warm_start(params, source_flat: dict, fresh=lora.TRAINED_WITH_LORA, source: str = "source"):
  """params (the new model's pure dict) with every leaf found in `source_flat` replaced by it.

  Returns (params, report). Raises ValueError for a shape mismatch or for a leaf missing from the
  source whose path has no component in `fresh` (train.init_from_fresh)."""
  fresh = set(fresh)
  loaded, kept, missing, mismatched = [], [], [], []

  def take(path, leaf):
    key = ckpt_lib.path_str(path)
    if key not in source_flat:
      (kept if fresh & set(key.split("/")) else missing).append(key)
      return leaf
    value = source_flat[key]
    if tuple(value.shape) != tuple(leaf.shape):
      mismatched.append(f"{key}: {tuple(value.shape)} in the source, {tuple(leaf.shape)} here")
      return leaf
    loaded.append(key)
    return jax.numpy.asarray(np.asarray(value), dtype=leaf.dtype)

  new_params = jax.tree_util.tree_map_with_path(take, params)
  if mismatched:
    raise ValueError(f"train.init_from={source!r} does not match the model (another width or "
                     f"vocabulary?): {len(mismatched)} leaves differ, e.g. {mismatched[:3]}")
  if missing:
    raise ValueError(
        f"train.init_from={source!r} lacks {len(missing)} parameters of this model: {missing[:6]}. "
        f"Parameters that may start from their initial value are those with a path component in "
        f"train.init_from_fresh={tuple(sorted(fresh))}; add the module name there if intended")
  if not loaded:
    raise ValueError(f"train.init_from={source!r}: no parameter of this model is in the source")
  unused = sorted(set(source_flat) - set(loaded))
  report = dict(loaded=len(loaded), fresh=kept, unused_from_source=unused)
  return new_params, report


def init_from_checkpoint(cfg, params, workdir: str):
  """The training loop's entry: params warm-started from cfg.train.init_from, report written."""
  source = cfg.train.init_from
  source_flat, step, merged = load_source_params(source, cfg.train.init_from_step)
  params, report = warm_start(params, source_flat, cfg.train.init_from_fresh, source)
  report = dict(source=os.path.abspath(source), step=int(step), lora_merged=merged, **report)
  with open(os.path.join(workdir, "init_from.json"), "w") as f:
    json.dump(report, f, indent=1)
  logging.info("Initialised %d parameters from %s (step %d%s); fresh: %s; unused from the "
               "source: %s", report["loaded"], source, step, ", LoRA merged" if merged else "",
               report["fresh"], report["unused_from_source"])
  return params
