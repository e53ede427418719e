"""Config checks of the memorizing, compressive and rmt options (one ValueError naming the field),
and their entries in the FLOP formula (longctx/flops.py)."""
import pytest

from longctx.config import base_config, finalize
from longctx.flops import model_flops_per_token


def _cfg(attention, **changes):
  cfg = base_config()  # block_len 256, 4 layers
  cfg.model.attention = attention
  for path, value in changes.items():
    section, leaf = path.split(".")
    cfg.model[section][leaf] = value
  return cfg


@pytest.mark.parametrize("attention,changes,field", [
    ("memorizing", {"memorizing.capacity": 1000}, "model.memorizing.capacity"),  # not a multiple of L
    ("memorizing", {"memorizing.top_k": 0}, "model.memorizing.top_k"),
    ("memorizing", {"memorizing.top_k": 2048}, "model.memorizing.top_k"),         # > capacity
    ("memorizing", {"memorizing.layers": (4,)}, "model.memorizing.layers"),       # 4 layers: 0..3
    ("memorizing", {"memorizing.layers": (1, 1)}, "model.memorizing.layers"),
    ("memorizing", {"memorizing.scale_init": 0.0}, "model.memorizing.scale_init"),
    ("compressive", {"compressive.rate": 3}, "model.compressive.rate"),           # 3 does not divide 256
    ("compressive", {"compressive.compressed_len": 100}, "model.compressive.compressed_len"),
    ("compressive", {"compressive.recon_weight": -1.0}, "model.compressive.recon_weight"),
    ("rmt", {"rmt.num_tokens": 0}, "model.rmt.num_tokens"),
])
def test_bad_field_is_named(attention, changes, field):
  with pytest.raises(ValueError) as excinfo:
    finalize(_cfg(attention, **changes))
  assert field in str(excinfo.value), str(excinfo.value)


def test_defaults_are_valid_and_unused_options_are_not_checked():
  for attention in ("memorizing", "compressive", "rmt"):
    finalize(_cfg(attention))
  finalize(_cfg("infini", **{"memorizing.capacity": 1000, "compressive.rate": 3}))


def test_bench_flop_formula_covers_the_baselines():
  model = base_config().model  # d 256, f 1024, V 256, 4 layers, L 256
  d, f, v, layers, block = 256, 1024, 256, 4, 256
  n_mm = layers * (4 * d * d + 3 * d * f) + d * v
  xl = model_flops_per_token(dict_model(model, "xl"), 4096)
  mem = model_flops_per_token(dict_model(model, "memorizing", **{"memorizing.layers": (2,)}), 4096)
  assert mem["attn_fwd"] == xl["attn_fwd"]
  assert mem["mem_fwd"] == 1 * 2 * (1024 + 32) * d  # one kNN layer, capacity 1024, top_k 32
  comp = model_flops_per_token(dict_model(model, "compressive"), 4096)
  assert comp["keys_seen"] == block + 256 + block / 2
  assert comp["mem_fwd"] == layers * (4 * d * d + 4 * (block + block / 2) * d)
  rmt = model_flops_per_token(dict_model(model, "rmt", **{"rmt.num_tokens": 16}), 4096)
  assert rmt["keys_seen"] == (256 + 32) ** 2 / 512
  assert rmt["mem_fwd"] == 2 * (32 / 256) * (n_mm - d * v)
  assert rmt["train"] == 6 * n_mm + 3 * rmt["attn_fwd"] + 3 * rmt["mem_fwd"]


def dict_model(model, attention, **changes):
  model = model.copy_and_resolve_references()
  model.attention = attention
  for path, value in changes.items():
    section, leaf = path.split(".")
    model[section][leaf] = value
  return model


@pytest.mark.parametrize("attention", ["memorizing", "compressive", "rmt"])
def test_parameters_and_memory_are_distinct_buffers(tiny_cfg, attention):
  """The train step donates its state: two leaves sharing one buffer would be donated twice (the
  compressor's two kernels once did)."""
  import jax
  from flax import nnx
  from longctx.models.decoder import Decoder
  model = Decoder(tiny_cfg(attention=attention), nnx.Rngs(0))
  leaves = jax.tree.leaves(nnx.state(model)) + jax.tree.leaves(model.init_memory(2))
  pointers = [leaf.unsafe_buffer_pointer() for leaf in leaves]
  assert len(set(pointers)) == len(pointers)
