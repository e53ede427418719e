"""LoRA (longctx.layers.lora): merged weights give the unmerged logits, the base weights do not
depend on LoRA, and with LoRA on only the LoRA factors (and a FAM prompt) train."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from longctx import config as config_lib
from longctx import train
from longctx.layers import lora
from longctx.models.decoder import Decoder

B, L = 2, 4
EXTRA = {"infini": {}, "fam": dict(fam=dict(fam_len=2, mem_blocks=1))}  # fam is built on bswa


@functools.partial(jax.jit, static_argnums=0)
def step(graphdef, params, tokens, memory, positions, reset):
  return nnx.merge(graphdef, params)(tokens, memory, positions=positions, reset=reset)


def logits_of(graphdef, params, model, tokens):
  b, t = tokens.shape
  memory, out = model.init_memory(b), []
  for s in range(0, t, L):
    logits, memory = step(graphdef, params, jnp.asarray(tokens[:, s:s + L]), memory,
                          jnp.broadcast_to(jnp.arange(s, s + L), (b, L)), jnp.full((b,), s == 0))
    out.append(np.asarray(logits))
  return np.concatenate(out, 1)


def randomise_lora(params, seed):
  """LoRA B starts at zero (a LoRA model starts as its base); give every factor random values."""
  pure = nnx.to_pure_dict(params)
  keys = iter(jax.random.split(jax.random.key(seed), 1000))

  def fill(path, x):
    name = getattr(path[-1], "key", None)
    return 0.3 * jax.random.normal(next(keys), x.shape) if name in lora.LORA_PARAMS else x
  return jax.tree_util.tree_map_with_path(fill, pure)


@pytest.mark.parametrize("attention", sorted(EXTRA))
def test_merged_model_gives_the_unmerged_logits(tiny_cfg, attention):
  cfg = tiny_cfg(attention=attention, num_layers=2, block_len=L, lora=dict(rank=3, alpha=6.0),
                 **EXTRA[attention])
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  pure = randomise_lora(params, 1)
  tokens = np.random.default_rng(2).integers(0, cfg.vocab_size, (B, 3 * L)).astype(np.int32)
  unmerged = logits_of(graphdef, pure, model, tokens)

  merged, merged_cfg = lora.merge_lora(pure, cfg)
  assert merged_cfg.lora.rank == 0 and cfg.lora.rank == 3
  plain = Decoder(merged_cfg, nnx.Rngs(0))
  plain_graphdef, plain_params = nnx.split(plain)
  nnx.replace_by_pure_dict(plain_params, merged)  # fails if the structures differ
  np.testing.assert_allclose(logits_of(plain_graphdef, plain_params, plain, tokens), unmerged,
                             atol=1e-4, rtol=1e-4)
  # The factors matter: the base weights alone give other logits.
  base = logits_of(graphdef, nnx.to_pure_dict(params), model, tokens)
  assert np.max(np.abs(base - unmerged)) > 1e-2


def test_base_weights_do_not_depend_on_lora_and_targets_are_honoured(tiny_cfg):
  plain = nnx.to_pure_dict(nnx.state(Decoder(tiny_cfg(attention="fam", fam=dict(fam_len=2)),
                                             nnx.Rngs(0))))
  cfg = tiny_cfg(attention="fam", fam=dict(fam_len=2), lora=dict(rank=2, targets=("query", "up")))
  with_lora = nnx.to_pure_dict(nnx.state(Decoder(cfg, nnx.Rngs(0))))
  layer = with_lora["layers"][0]
  assert set(layer["attention"]["query"]) == {"kernel", "lora_a", "lora_b"}
  assert set(layer["mlp"]["up"]) == {"kernel", "lora_a", "lora_b"}
  assert set(layer["attention"]["key"]) == {"kernel"} and set(layer["mlp"]["down"]) == {"kernel"}
  stripped, _ = lora.merge_lora(jax.tree.map(jnp.zeros_like, with_lora), cfg)  # structure only
  assert jax.tree.structure(stripped) == jax.tree.structure(plain)
  merged, _ = lora.merge_lora(with_lora, cfg)   # B = 0 at init: merging changes nothing
  jax.tree.map(np.testing.assert_array_equal, merged, plain)


def _cfg(**lora_overrides):
  cfg = config_lib.base_config()
  cfg.model.update(attention="fam", vocab_size=256, d_model=16, num_heads=2, num_layers=1,
                   mlp_dim=32, block_len=8, remat_policy="none")
  cfg.model.fam.update(fam_len=2, mem_blocks=1, state_norm=True)  # FAM's own params train too
  cfg.model.lora.update(lora_overrides)
  cfg.data.update(seq_len=256, batch_size=2, key_len=2, other_weight=0.1)
  cfg.train.update(steps=3, warmup_steps=0, lr=1e-2)
  return config_lib.finalize(cfg)


def test_only_lora_factors_and_the_fam_prompt_train(tiny_cfg):
  from longctx.data import sources
  from longctx.models import scan  # noqa: F401
  cfg = _cfg(rank=2)
  graphdef, params, model = train.build_model(cfg)
  tx, schedule = train.make_optimizer(cfg)
  state = train.init_state(cfg, params, model, tx)
  step_fn = jax.jit(functools.partial(train.train_step, graphdef=graphdef, model_cfg=cfg.model,
                                      tx=tx, schedule=schedule, train_cfg=cfg.train))
  source = sources.make_train_source(cfg)
  before = jax.tree.map(np.asarray, state["params"])
  for i in range(2):  # two steps: lora_a gets a gradient once lora_b is non-zero
    state, _ = step_fn(state, source.batch(i))
  labels = lora.trainable_labels(before)
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, np.asarray(b)), before,
                         state["params"])
  flat_labels = jax.tree_util.tree_leaves_with_path(labels)
  flat_changed = jax.tree.leaves(changed)
  trained = {jax.tree_util.keystr(p) for (p, lab), c in zip(flat_labels, flat_changed) if c}
  expected = {jax.tree_util.keystr(p) for p, lab in flat_labels if lab == "train"}
  assert trained == expected
  assert any("feedback_prompt" in k for k in expected) and any("lora_a" in k for k in expected)
  assert any("state_norm" in k for k in expected)
  assert len(expected) < len(flat_labels)
  # Evaluation runs on the merged weights (train.merged_for_inference): same logits, no LoRA.
  eval_cfg, eval_graphdef, eval_params = train.merged_for_inference(cfg, state["params"])
  assert eval_cfg.model.lora.rank == 0 and cfg.model.lora.rank == 2
  tokens = jnp.asarray(source.batch(5)["inputs"][:, :cfg.model.block_len])
  run = lambda g, p: nnx.merge(g, p)(tokens, model.init_memory(2), positions=jnp.broadcast_to(
      jnp.arange(tokens.shape[1]), tokens.shape), reset=jnp.ones((2,), bool))[0]
  np.testing.assert_allclose(np.asarray(run(eval_graphdef, eval_params)),
                             np.asarray(run(graphdef, state["params"])), atol=1e-4, rtol=1e-4)


def test_bad_lora_config_is_named():
  for changes, field in [(dict(rank=-1), "model.lora.rank"),
                         (dict(targets=("query", "qkv")), "model.lora.targets")]:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
      _cfg(**changes)
