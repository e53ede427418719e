"""Config defaults, argument parsing and validation shared by every configs/<task>/<arch>.py.

Configs are ml_collections.ConfigDicts, locked after `finalize`, so a mistyped key fails. Errors a
user can cause raise one ValueError naming the field.
"""
import ml_collections

from longctx.layers import ATTENTION_NAMES
from longctx.ops.linear_memory import UPDATE_RULES

REMAT_POLICIES = ("none", "nothing_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable",
                  "everything_saveable")
DTYPES = ("float32", "bfloat16")


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The decoder's defaults: the bench shape (4 layers, d 256, 4 heads, block 256, bytes)."""
  cfg = ml_collections.ConfigDict(dict(
      attention="infini",        # one of ATTENTION_NAMES
      vocab_size=256,            # byte vocabulary
      d_model=256,
      num_heads=4,
      num_layers=4,
      mlp_dim=1024,              # SwiGLU hidden width
      block_len=256,             # L: tokens per scanned block (ignored by `full`: one block)
      rope_theta=10000.0,
      dtype="float32",           # activation dtype; params and memory stay float32
      tie_embeddings=False,
      remat_policy="nothing_saveable",  # jax.checkpoint policy around the block step
      bptt_blocks=0,             # >0: stop gradients through the memory every k blocks
      scan_unroll=1,             # lax.scan unroll factor over blocks
      bswa=dict(mem_blocks=1, stop_grad=False),
      xl=dict(mem_blocks=1),
      infini=dict(update_rule="linear", gate_init=0.0, eps=1e-6),
  ))
  cfg.update(overrides)
  return cfg


def base_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.model = model_config()
  cfg.data = ml_collections.ConfigDict(dict(seq_len=4096))
  return cfg


def parse_arg(arg: str, **defaults) -> ml_collections.ConfigDict:
  """'cpu,attention=bswa' -> {preset: 'cpu', attention: 'bswa'} (big_vision style arguments).

  A bare word sets `preset`; key=value pairs are parsed as int, float, bool or str.
  """
  out = dict(defaults)
  for part in filter(None, (arg or "").split(",")):
    if "=" not in part:
      out["preset"] = part
      continue
    key, value = part.split("=", 1)
    if key not in defaults:
      raise ValueError(f"config argument {key!r} is not one of {sorted(defaults)}")
    out[key] = _parse_value(value, defaults[key])
  return ml_collections.ConfigDict(out)


def _parse_value(value: str, default):
  if isinstance(default, bool):
    if value.lower() not in ("true", "false", "1", "0"):
      raise ValueError(f"expected a boolean, got {value!r}")
    return value.lower() in ("true", "1")
  if isinstance(default, int):
    return int(value)
  if isinstance(default, float):
    return float(value)
  return value


def validate_model(model, field="model"):
  """Raises ValueError naming the first bad field of a model config."""
  if model.attention not in ATTENTION_NAMES:
    raise ValueError(f"{field}.attention={model.attention!r} is not one of {ATTENTION_NAMES}")
  if model.d_model % model.num_heads:
    raise ValueError(f"{field}.d_model={model.d_model} is not divisible by "
                     f"{field}.num_heads={model.num_heads}")
  if (model.d_model // model.num_heads) % 2:
    raise ValueError(f"{field}.d_model/{field}.num_heads={model.d_model // model.num_heads} must be "
                     "even (rotary positions rotate pairs of dimensions)")
  for name in ("vocab_size", "d_model", "num_heads", "num_layers", "mlp_dim", "block_len"):
    if model[name] <= 0:
      raise ValueError(f"{field}.{name}={model[name]} must be positive")
  if model.remat_policy not in REMAT_POLICIES:
    raise ValueError(f"{field}.remat_policy={model.remat_policy!r} is not one of {REMAT_POLICIES}")
  if model.dtype not in DTYPES:
    raise ValueError(f"{field}.dtype={model.dtype!r} is not one of {DTYPES}")
  if model.bptt_blocks < 0:
    raise ValueError(f"{field}.bptt_blocks={model.bptt_blocks} must be >= 0 (0: no truncation)")
  if model.bswa.mem_blocks < 0:
    raise ValueError(f"{field}.bswa.mem_blocks={model.bswa.mem_blocks} must be >= 0")
  if model.xl.mem_blocks < 1:
    raise ValueError(f"{field}.xl.mem_blocks={model.xl.mem_blocks} must be >= 1")
  if model.infini.update_rule not in UPDATE_RULES:
    raise ValueError(f"{field}.infini.update_rule={model.infini.update_rule!r} is not one of {UPDATE_RULES}")
  if model.infini.eps <= 0:
    raise ValueError(f"{field}.infini.eps={model.infini.eps} must be > 0")


def validate_seq_len(model, seq_len: int, field: str):
  """A sequence must split into whole blocks (nothing is padded or truncated silently)."""
  if seq_len <= 0:
    raise ValueError(f"{field}={seq_len} must be positive")
  if model.attention != "full" and seq_len % model.block_len:
    raise ValueError(f"{field}={seq_len} is not a multiple of model.block_len={model.block_len}")


def validate(cfg):
  validate_model(cfg.model)
  validate_seq_len(cfg.model, cfg.data.seq_len, "data.seq_len")


def finalize(cfg):
  """Validates and locks a config; every get_config returns finalize(config)."""
  validate(cfg)
  cfg.lock()
  return cfg
