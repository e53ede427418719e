"""train.init_from (longctx/warm_start.py): a model starts from another run's parameters, as the
paper's FAM is fine-tuned from a pretrained model. Checked: every shared leaf is the source's, the
new leaves (LoRA factors, FAM's prompt) keep their initial values, a LoRA source is merged (the new
model gives the source's logits), wrong sources fail with one message, and a resume ignores it."""
import json
import os
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx import checkpoint as ckpt_lib
from longctx import train, warm_start
from longctx.models.decoder import Decoder

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs", "passkey"))
import bswa as bswa_config  # noqa: E402
import fam as fam_config  # noqa: E402
import infini as infini_config  # noqa: E402


def smoke(module, steps=2, model=None, **train_overrides):
  cfg = module.get_config("smoke")
  cfg.unlock()
  cfg.train.update(steps=steps, log_every=1, **train_overrides)
  if model:
    cfg.model.update(model)
  cfg.checkpoint.update(every_steps=1, async_save=False)
  cfg.evals.run = ()
  cfg.lock()
  return cfg


@pytest.fixture(scope="module")
def bswa_run(tmp_path_factory):
  """A BSWA smoke model trained 2 steps: the 'pretrained' source."""
  workdir = str(tmp_path_factory.mktemp("bswa_source"))
  out = train.train_and_evaluate(smoke(bswa_config), workdir)
  return workdir, ckpt_lib.flat_leaves(out["params"])


def test_fam_with_lora_starts_from_the_bswa_weights_and_new_leaves_keep_their_init(bswa_run, tmp_path):
  source, source_flat = bswa_run
  cfg = smoke(fam_config, steps=0, model=dict(lora=dict(rank=2)), init_from=source)
  _, init_params, _ = train.build_model(cfg)
  init_flat = ckpt_lib.flat_leaves(init_params)
  out = train.train_and_evaluate(cfg, str(tmp_path))   # 0 steps: the warm-started params come back
  got = ckpt_lib.flat_leaves(out["params"])

  fresh = [k for k in got if k not in source_flat]
  assert fresh and all(k.endswith(("/lora_a", "/lora_b")) or k == "feedback_prompt" for k in fresh)
  for k in fresh:   # the LoRA factors and the prompt are the new model's own initial values
    np.testing.assert_array_equal(got[k], init_flat[k])
  assert not np.any(got["layers/0/attention/query/lora_b"])
  for k, v in source_flat.items():   # every leaf of the source is taken over exactly
    np.testing.assert_array_equal(got[k], v)
    assert not np.array_equal(init_flat[k], v)   # ... and differs from a fresh init
  report = json.load(open(tmp_path / "init_from.json"))
  assert report["loaded"] == len(source_flat) and report["step"] == 2
  assert sorted(report["fresh"]) == sorted(fresh) and report["unused_from_source"] == []
  assert not report["lora_merged"]


def _logits(cfg, flat_params, tokens):
  model = Decoder(cfg.model, nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  params = jax.tree_util.tree_map_with_path(
      lambda p, x: jnp.asarray(flat_params[ckpt_lib.path_str(p)]), nnx.to_pure_dict(state))
  b, t = tokens.shape
  logits, _ = nnx.merge(graphdef, params)(
      jnp.asarray(tokens), model.init_memory(b),
      positions=jnp.broadcast_to(jnp.arange(t), (b, t)), reset=jnp.ones((b,), bool))
  return np.asarray(logits)


def test_a_lora_source_is_merged_so_the_new_model_gives_its_logits(tmp_path):
  lora_cfg = smoke(infini_config, steps=3, model=dict(lora=dict(rank=2, alpha=6.0)), lr=3e-2)
  src = train.train_and_evaluate(lora_cfg, str(tmp_path / "src"))
  src_flat = ckpt_lib.flat_leaves(src["params"])
  assert np.any(src_flat["layers/0/attention/query/lora_b"])   # the factors trained

  plain_cfg = smoke(infini_config, steps=0, init_from=str(tmp_path / "src" / "checkpoints"))
  out = train.train_and_evaluate(plain_cfg, str(tmp_path / "dst"))
  tokens = np.random.default_rng(0).integers(0, 256, (2, plain_cfg.model.block_len)).astype(np.int32)
  np.testing.assert_allclose(_logits(plain_cfg, ckpt_lib.flat_leaves(out["params"]), tokens),
                             _logits(lora_cfg, src_flat, tokens), atol=1e-4, rtol=1e-4)
  assert json.load(open(tmp_path / "dst" / "init_from.json"))["lora_merged"]


def test_missing_and_mismatched_parameters_fail_with_one_message(bswa_run, tmp_path):
  source, source_flat = bswa_run
  _, params, _ = train.build_model(smoke(fam_config))
  with pytest.raises(ValueError, match=r"lacks 1 parameters.*feedback_prompt.*init_from_fresh"):
    warm_start.warm_start(params, source_flat, fresh=("lora_a",), source=source)
  _, wide, _ = train.build_model(smoke(bswa_config, model=dict(d_model=32, mlp_dim=64)))
  with pytest.raises(ValueError, match="does not match the model.*embed/embedding"):
    warm_start.warm_start(wide, source_flat, source=source)
  with pytest.raises(FileNotFoundError, match="train.init_from=.*no such directory"):
    warm_start.load_source_params(str(tmp_path / "nowhere"))
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    warm_start.load_source_params(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="no checkpoint for step 7"):
    warm_start.load_source_params(source, step=7)


def test_a_resumed_run_does_not_read_init_from_again(bswa_run, tmp_path):
  source, _ = bswa_run
  copy = str(tmp_path / "source_copy")
  shutil.copytree(source, copy)
  train.train_and_evaluate(smoke(bswa_config, steps=1, init_from=copy), str(tmp_path / "run"))
  shutil.rmtree(copy)   # a resume must not need the source any more
  out = train.train_and_evaluate(smoke(bswa_config, steps=2, init_from=copy), str(tmp_path / "run"))
  assert out["final_step"] == 2
