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
      scan_group_blocks=0,       # sqrt checkpointing: 0 off, -1 auto (~sqrt(#blocks)), G blocks/group
      bswa=dict(mem_blocks=1, stop_grad=False),
      xl=dict(mem_blocks=1),
      infini=dict(update_rule="linear", gate_init=0.0, eps=1e-6),
      # Memorizing Transformer: kNN memory of `capacity` (k, v) pairs per head (a multiple of
      # block_len), top_k retrieved per query; layers: 0-based indices of the kNN layers, the
      # others are Transformer-XL layers; () = every layer. The XL cache is model.xl.mem_blocks.
      memorizing=dict(capacity=1024, top_k=32, layers=(), gate_init=0.0, scale_init=10.0,
                      approximate=False, recall_target=0.95),
      # Compressive Transformer: XL cache (model.xl.mem_blocks) + compressed_len slots of
      # compressed memory at rate c (rate divides block_len); recon_weight scales the
      # attention-reconstruction loss added to the training loss.
      compressive=dict(compressed_len=256, rate=2, recon_weight=1.0),
      rmt=dict(num_tokens=16),   # RMT: memory tokens read/written per block
  ))
  cfg.update(overrides)
  return cfg


def base_config() -> ml_collections.ConfigDict:
  """Everything a run needs; task configs override what they change."""
  cfg = ml_collections.ConfigDict()
  cfg.model = model_config()
  cfg.data = ml_collections.ConfigDict(dict(
      task="passkey", tokenizer="bytes", seq_len=4096, batch_size=8, seed=0,
      key_len=5,                  # digits of the pass key
      depth_range=(0.0, 1.0),     # training key depths, uniform
      other_weight=0.0,           # loss weight of the non-answer tokens
  ))
  cfg.train = ml_collections.ConfigDict(dict(
      steps=1000, seed=0, optimizer="adamw", lr=1e-3, warmup_steps=100, min_lr_ratio=0.1,
      b1=0.9, b2=0.99, weight_decay=0.0, grad_clip=1.0, log_every=10,
      compile_only=False,         # lower + compile the train step on abstract inputs, then exit
      time_limit_minutes=0.0,     # > 0: stop training after this wall time (per launch), save, evaluate
  ))
  cfg.checkpoint = ml_collections.ConfigDict(dict(every_steps=100, keep=2, async_save=True))
  cfg.mesh = ml_collections.ConfigDict(dict(data=-1))  # -1: all devices on the data axis
  cfg.evals = ml_collections.ConfigDict(dict(
      run=("passkey",),
      passkey=dict(lengths=(1024,), depths=(0.0, 0.5, 1.0), samples=4, key_len=5, seed=1,
                   template="infini", chunk_blocks=16, jsonl="",
                   generate=False),  # also decode the answer greedily: generated exact match
  ))
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
  _validate_baselines(model, field)


def _validate_baselines(model, field):
  """memorizing, compressive and rmt options, checked when the attention uses them (their defaults
  need not fit every block length)."""
  if model.attention == "memorizing":
    _validate_memorizing(model, field)
  if model.attention == "compressive":
    _validate_compressive(model, field)
  if model.attention == "rmt" and model.rmt.num_tokens <= 0:
    raise ValueError(f"{field}.rmt.num_tokens={model.rmt.num_tokens} must be positive")


def _validate_memorizing(model, field):
  mc = model.memorizing
  if mc.capacity <= 0 or mc.capacity % model.block_len:
    raise ValueError(f"{field}.memorizing.capacity={mc.capacity} must be a positive multiple of "
                     f"{field}.block_len={model.block_len}")
  if mc.top_k <= 0 or mc.top_k > mc.capacity:
    raise ValueError(f"{field}.memorizing.top_k={mc.top_k} must lie in [1, capacity={mc.capacity}]")
  if any(not 0 <= i < model.num_layers for i in mc.layers) or len(set(mc.layers)) != len(mc.layers):
    raise ValueError(f"{field}.memorizing.layers={tuple(mc.layers)} must be distinct 0-based layer "
                     f"indices below {field}.num_layers={model.num_layers}")
  if mc.scale_init <= 0:
    raise ValueError(f"{field}.memorizing.scale_init={mc.scale_init} must be > 0")
  if not 0.0 < mc.recall_target <= 1.0:
    raise ValueError(f"{field}.memorizing.recall_target={mc.recall_target} must lie in (0, 1]")


def _validate_compressive(model, field):
  cc = model.compressive
  if cc.rate <= 0 or model.block_len % cc.rate:
    raise ValueError(f"{field}.compressive.rate={cc.rate} must be a positive divisor of "
                     f"{field}.block_len={model.block_len}")
  if cc.compressed_len <= 0 or cc.compressed_len % (model.block_len // cc.rate):
    raise ValueError(f"{field}.compressive.compressed_len={cc.compressed_len} must be a positive "
                     f"multiple of block_len / rate = {model.block_len // cc.rate}")
  if cc.recon_weight < 0:
    raise ValueError(f"{field}.compressive.recon_weight={cc.recon_weight} must be >= 0")


def validate_seq_len(model, seq_len: int, field: str):
  """A sequence must split into whole blocks (nothing is padded or truncated silently)."""
  if seq_len <= 0:
    raise ValueError(f"{field}={seq_len} must be positive")
  if model.attention != "full" and seq_len % model.block_len:
    raise ValueError(f"{field}={seq_len} is not a multiple of model.block_len={model.block_len}")


def validate(cfg):
  """Checks every section present; raises ValueError naming the first bad field."""
  validate_model(cfg.model)
  validate_seq_len(cfg.model, cfg.data.seq_len, "data.seq_len")
  if "data" in cfg and "batch_size" in cfg.data:
    _validate_training(cfg)


def _validate_training(cfg):
  from longctx.data.sources import TASKS
  from longctx.evaluate import EVALUATORS
  from longctx.optim import OPTIMIZERS
  if cfg.data.task not in TASKS:
    raise ValueError(f"data.task={cfg.data.task!r} is not one of {TASKS}")
  if cfg.data.batch_size <= 0:
    raise ValueError(f"data.batch_size={cfg.data.batch_size} must be positive")
  lo, hi = cfg.data.depth_range
  if not 0.0 <= lo <= hi <= 1.0:
    raise ValueError(f"data.depth_range={tuple(cfg.data.depth_range)} must satisfy 0 <= lo <= hi <= 1")
  if cfg.train.optimizer not in OPTIMIZERS:
    raise ValueError(f"train.optimizer={cfg.train.optimizer!r} is not one of {OPTIMIZERS}")
  if cfg.train.steps < 0 or cfg.train.lr <= 0 or cfg.train.log_every <= 0:
    raise ValueError("train.steps must be >= 0, train.lr and train.log_every > 0 "
                     f"(got {cfg.train.steps}, {cfg.train.lr}, {cfg.train.log_every})")
  if cfg.checkpoint.every_steps <= 0 or cfg.checkpoint.keep <= 0:
    raise ValueError(f"checkpoint.every_steps={cfg.checkpoint.every_steps} and "
                     f"checkpoint.keep={cfg.checkpoint.keep} must be positive")
  for name in cfg.evals.run:
    if name not in EVALUATORS:
      raise ValueError(f"evals.run names {name!r}, not one of {EVALUATORS}")
  ev = cfg.evals.passkey
  if any(not 0.0 <= d <= 1.0 for d in ev.depths):
    raise ValueError(f"evals.passkey.depths={tuple(ev.depths)} must lie in [0, 1]")
  if ev.chunk_blocks <= 0 or ev.samples <= 0:
    raise ValueError("evals.passkey.chunk_blocks and evals.passkey.samples must be positive")


def finalize(cfg):
  """Validates and locks a config; every get_config returns finalize(config)."""
  validate(cfg)
  cfg.lock()
  return cfg
