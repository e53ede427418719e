"""Validation of configs: every check a user's config or override can fail, each raising one
ValueError that names the field. `longctx.config.finalize` runs `validate` before locking; the
public names are re-exported from longctx.config.
"""
from longctx.layers import ATTENTION_NAMES
from longctx.layers.lora import LORA_TARGETS
from longctx.ops.linear_memory import UPDATE_RULES

REMAT_POLICIES = ("none", "nothing_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable",
                  "everything_saveable")
DTYPES = ("float32", "bfloat16")


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
  if model.fam.fam_len < 0:
    raise ValueError(f"{field}.fam.fam_len={model.fam.fam_len} must be >= 0")
  if model.fam.mem_blocks < 0:
    raise ValueError(f"{field}.fam.mem_blocks={model.fam.mem_blocks} must be >= 0")
  if model.lora.rank < 0:
    raise ValueError(f"{field}.lora.rank={model.lora.rank} must be >= 0 (0: no LoRA)")
  bad = sorted(set(model.lora.targets) - set(LORA_TARGETS))
  if bad or not model.lora.targets:
    raise ValueError(f"{field}.lora.targets={tuple(model.lora.targets)} must be a non-empty subset "
                     f"of {LORA_TARGETS}")
  _validate_infinity_former(model.infinity_former, f"{field}.infinity_former")
  if model.attention == "titans":
    _validate_titans(model, f"{field}.titans")
  _validate_baselines(model, field)


def _validate_infinity_former(c, field):
  from longctx.layers.infinity_former import STICKY_DRAWS, TAU_SCHEDULES  # pylint: disable=import-outside-toplevel
  widths = tuple(c.basis_widths)
  checks = (
      ("stm_blocks", c.stm_blocks >= 1, ">= 1"),
      ("basis_widths", len(widths) > 0 and all(w > 0 for w in widths), "a non-empty tuple of widths > 0"),
      ("num_basis", c.num_basis > 0 and widths and c.num_basis % len(widths) == 0,
       f"a positive multiple of len(basis_widths)={len(widths)}"),
      ("ridge_lambda", c.ridge_lambda > 0, "> 0"),
      ("tau", 0 < c.tau < 1, "in (0, 1)"),
      ("num_samples", c.num_samples >= 1, ">= 1"),
      ("num_bins", c.num_bins >= 1, ">= 1"),
      ("min_var", c.min_var > 0, "> 0"),
      ("kl_weight", c.kl_weight >= 0, ">= 0"),
      ("kl_sigma0", c.kl_sigma0 > 0, "> 0"),
      ("tau_schedule", c.tau_schedule in TAU_SCHEDULES, f"one of {TAU_SCHEDULES}"),
      ("sticky_draw", c.sticky_draw in STICKY_DRAWS, f"one of {STICKY_DRAWS}"),
  )
  for name, ok, what in checks:
    if not ok:
      raise ValueError(f"{field}.{name}={c[name]!r} must be {what}")


def _validate_titans(model, field):
  from longctx.layers.titans import FORGET_TARGETS, GATE_MODES, OUTPUT_GATES, VARIANTS
  t = model.titans
  for name, allowed in (("variant", VARIANTS), ("gates", GATE_MODES),
                        ("output_gate", OUTPUT_GATES), ("forget_to", FORGET_TARGETS)):
    if t[name] not in allowed:
      raise ValueError(f"{field}.{name}={t[name]!r} is not one of {allowed}")
  for name, low in (("memory_depth", 1), ("memory_expansion", 1), ("chunk_size", 1),
                    ("chunk_unroll", 1), ("conv_width", 1), ("persistent_tokens", 0),
                    ("window_blocks", 0)):
    if t[name] < low:
      raise ValueError(f"{field}.{name}={t[name]} must be >= {low}")
  if model.block_len % t.chunk_size:
    raise ValueError(f"{field}.chunk_size={t.chunk_size} does not divide "
                     f"model.block_len={model.block_len}")
  if not t.max_grad_norm >= 0:
    raise ValueError(f"{field}.max_grad_norm={t.max_grad_norm} must be >= 0 (0 = no clip)")
  if not t.max_lr > 0:
    raise ValueError(f"{field}.max_lr={t.max_lr} must be > 0")
  if not 0 < t.max_momentum <= 1:
    raise ValueError(f"{field}.max_momentum={t.max_momentum} must be in (0, 1] (1 = no cap)")



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


def _validate_train_len(cfg, seq_len: int, field: str):
  """A training example length: a whole number of blocks, and room for the task's answer."""
  validate_seq_len(cfg.model, seq_len, field)
  if cfg.data.task == "sorting":
    from longctx.data import sorting
    if seq_len <= sorting.TARGET_LEN:
      raise ValueError(f"{field}={seq_len} must exceed {sorting.TARGET_LEN} for sorting")


def _validate_schedule(name, schedule, value_ok, value_what):
  """A ((step, value), ...) schedule (data.seq_len_schedule, data.filler_weight_schedule): pairs
  of an int step and a value passing value_ok, steps > 0 and increasing. Returns the pairs."""
  schedule = tuple(tuple(entry) for entry in schedule)
  last_step = 0
  for i, entry in enumerate(schedule):
    if len(entry) != 2 or not isinstance(entry[0], int) or not value_ok(entry[1]):
      raise ValueError(f"{name}[{i}]={entry!r} must be a (step, value) pair: an int step and "
                       f"{value_what}")
    if entry[0] <= last_step:
      raise ValueError(f"{name}[{i}] starts at step {entry[0]}: steps must be > 0 and increasing")
    last_step = entry[0]
  return schedule


def _is_weight(value) -> bool:
  """A write weight (data.filler_weight_max, data.filler_weight_schedule): finite, >= 1."""
  return isinstance(value, (int, float)) and 1.0 <= value < float("inf")


def _validate_seq_len_schedule(cfg):
  schedule = _validate_schedule("data.seq_len_schedule", cfg.data.seq_len_schedule,
                                lambda v: isinstance(v, int), "an int seq_len")
  if not schedule:
    return
  from longctx.data.sources import FRESH_EXAMPLE_TASKS
  if cfg.data.task not in FRESH_EXAMPLE_TASKS:
    raise ValueError(f"data.seq_len_schedule is set but data.task={cfg.data.task!r} streams "
                     "documents; a length curriculum needs fresh examples per step "
                     f"{FRESH_EXAMPLE_TASKS}")
  for i, (_, seq_len) in enumerate(schedule):
    _validate_train_len(cfg, seq_len, f"data.seq_len_schedule[{i}]")


def _validate_filler_weight_schedule(cfg):
  schedule = _validate_schedule("data.filler_weight_schedule", cfg.data.filler_weight_schedule,
                                _is_weight, "a finite r_max >= 1")
  if schedule and (cfg.data.task != "passkey" or cfg.model.attention != "infini"):
    raise ValueError(f"data.filler_weight_schedule needs data.task='passkey' and "
                     f"model.attention='infini' (got {cfg.data.task!r}, {cfg.model.attention!r}): "
                     "only the compressive memory weights its writes")


def _validate_prompt_steps(cfg):
  """data.prompt_steps: passkey prompts fed over several steps with the memory carried."""
  n, start = cfg.data.prompt_steps, cfg.data.prompt_steps_from_step
  if isinstance(n, bool) or not isinstance(n, int) or n < 1:
    raise ValueError(f"data.prompt_steps={n!r} must be an integer >= 1 (1 = every prompt in one step)")
  if isinstance(start, bool) or not isinstance(start, int) or start < 0:
    raise ValueError(f"data.prompt_steps_from_step={start!r} must be an integer >= 0")
  short_prob, short_len = cfg.data.prompt_steps_short_prob, cfg.data.prompt_steps_short_len
  if isinstance(short_prob, bool) or not 0 <= short_prob < 1:
    raise ValueError(f"data.prompt_steps_short_prob={short_prob!r} must be in [0, 1)")
  if short_prob and n == 1:
    raise ValueError(f"data.prompt_steps_short_prob={short_prob} mixes short prompts into the "
                     "prompts fed over several steps; set data.prompt_steps > 1")
  if n == 1:
    return
  if cfg.data.task != "passkey":
    raise ValueError(f"data.prompt_steps={n} feeds passkey prompts over several steps; data.task "
                     f"is {cfg.data.task!r}")
  if short_prob:
    from longctx.data.passkey import min_passkey_tokens
    from longctx.data.sources import seq_len_at
    from longctx.data.tokenizers import ByteTokenizer
    step_len = seq_len_at(cfg.data, start)
    # The passkey source's prompts are bytes; below this no prompt with the key fits.
    least = min_passkey_tokens("9" * cfg.data.key_len, ByteTokenizer()) - 1
    if (isinstance(short_len, bool) or not isinstance(short_len, int)
        or not least <= short_len < step_len):
      raise ValueError(f"data.prompt_steps_short_len={short_len!r} must be an integer in {least}.."
                       f"{step_len - 1} (a whole prompt with a {cfg.data.key_len}-digit key, "
                       f"below the {step_len} tokens of a step from "
                       f"data.prompt_steps_from_step={start})")
  late = [s for s, _ in cfg.data.seq_len_schedule if s > start]
  if late:
    raise ValueError(f"data.seq_len_schedule changes the length at step {late[0]}, after "
                     f"data.prompt_steps_from_step={start}: a prompt fed over several steps needs "
                     "one length for all of them (start the multi-step prompts after the change)")
  for field, value, why in (
      ("data.memory_carry_prob", cfg.data.memory_carry_prob, "also decides which rows keep memory"),
      ("train.state_passing_prob", cfg.train.state_passing_prob,
       "overwrites every row's FAM, also in the middle of a prompt"),
      ("train.random_position_offset", cfg.train.random_position_offset,
       "draws a new offset every step, which would move a prompt's positions between its steps")):
    if value:
      raise ValueError(f"data.prompt_steps={n} and {field}={value} cannot be combined: {field} "
                       f"{why}")


def _validate_training(cfg):
  from longctx.data.sources import TASKS
  from longctx.evaluate import EVALUATORS
  from longctx.optim import OPTIMIZERS
  if cfg.data.task not in TASKS:
    raise ValueError(f"data.task={cfg.data.task!r} is not one of {TASKS}")
  if cfg.data.batch_size <= 0:
    raise ValueError(f"data.batch_size={cfg.data.batch_size} must be positive")
  if cfg.data.task == "sorting":
    from longctx.data import sorting
    if cfg.model.vocab_size < sorting.VOCAB_SIZE:
      raise ValueError(f"model.vocab_size={cfg.model.vocab_size} is too small for data.task='sorting' "
                       f"(needs >= {sorting.VOCAB_SIZE}: 20 symbols and the separator)")
  _validate_train_len(cfg, cfg.data.seq_len, "data.seq_len")
  _validate_seq_len_schedule(cfg)
  lo, hi = cfg.data.depth_range
  if not 0.0 <= lo <= hi <= 1.0:
    raise ValueError(f"data.depth_range={tuple(cfg.data.depth_range)} must satisfy 0 <= lo <= hi <= 1")
  fw = cfg.data.filler_weight_max
  if not _is_weight(fw):
    raise ValueError(f"data.filler_weight_max={fw!r} must be a finite number >= 1 (1 = off)")
  if fw > 1.0 and (cfg.data.task != "passkey" or cfg.model.attention != "infini"):
    raise ValueError(f"data.filler_weight_max={fw} needs data.task='passkey' and "
                     f"model.attention='infini' (got {cfg.data.task!r}, {cfg.model.attention!r}): "
                     "only the compressive memory weights its writes")
  _validate_filler_weight_schedule(cfg)
  carry = cfg.data.memory_carry_prob
  if not (isinstance(carry, (int, float)) and 0.0 <= carry < 1.0):
    raise ValueError(f"data.memory_carry_prob={carry!r} must lie in [0, 1) (0 = off)")
  from longctx.data.sources import FRESH_EXAMPLE_TASKS
  if carry > 0 and cfg.data.task not in FRESH_EXAMPLE_TASKS:
    raise ValueError(f"data.memory_carry_prob={carry} needs a task of fresh examples "
                     f"{FRESH_EXAMPLE_TASKS} (got {cfg.data.task!r}): text tasks carry memory by "
                     "document")
  if cfg.data.memory_carry_from_step < 0:
    raise ValueError(f"data.memory_carry_from_step={cfg.data.memory_carry_from_step} must be >= 0")
  from longctx.data import passkey as passkey_data
  if cfg.data.filler_weight_profile not in passkey_data.FILLER_WEIGHT_PROFILES:
    raise ValueError(f"data.filler_weight_profile={cfg.data.filler_weight_profile!r} is not one "
                     f"of {passkey_data.FILLER_WEIGHT_PROFILES}")
  if cfg.data.filler_weight_profile != "uniform" and fw == 1.0 and not cfg.data.filler_weight_schedule:
    raise ValueError(f"data.filler_weight_profile={cfg.data.filler_weight_profile!r} spreads a "
                     "filler weight, but data.filler_weight_max=1 (and no "
                     "data.filler_weight_schedule) weights nothing: set data.filler_weight_max > 1")
  if cfg.data.random_filler_phase and not (
      cfg.data.task == "passkey" or (cfg.data.task == "niah" and cfg.data.niah.haystack == "noise")):
    raise ValueError("data.random_filler_phase=True shifts the passkey filler or the S-NIAH noise "
                     f"haystack; data.task is {cfg.data.task!r}"
                     + (f" with data.niah.haystack={cfg.data.niah.haystack!r}"
                        if cfg.data.task == "niah" else ""))
  for field in ("end_depth_prob", "cut_key_prob"):
    prob = cfg.data[field]
    if not 0.0 <= prob <= 1.0:
      raise ValueError(f"data.{field}={prob} must lie in [0, 1]")
    if prob > 0 and cfg.data.task != "passkey":
      raise ValueError(f"data.{field}={prob} places passkey keys; data.task is {cfg.data.task!r}")
  if cfg.train.optimizer not in OPTIMIZERS:
    raise ValueError(f"train.optimizer={cfg.train.optimizer!r} is not one of {OPTIMIZERS}")
  if cfg.train.steps < 0 or cfg.train.lr <= 0 or cfg.train.log_every <= 0:
    raise ValueError("train.steps must be >= 0, train.lr and train.log_every > 0 "
                     f"(got {cfg.train.steps}, {cfg.train.lr}, {cfg.train.log_every})")
  if not 0.0 <= cfg.train.state_passing_prob <= 1.0:
    raise ValueError(f"train.state_passing_prob={cfg.train.state_passing_prob} must lie in [0, 1]")
  if cfg.train.state_passing_prob > 0 and cfg.model.attention != "fam":
    raise ValueError(f"train.state_passing_prob={cfg.train.state_passing_prob} needs "
                     f"model.attention='fam' (got {cfg.model.attention!r}): only FAM passes state")
  if not 0.0 <= cfg.train.ema_decay < 1.0:
    raise ValueError(f"train.ema_decay={cfg.train.ema_decay} must lie in [0, 1) (0: no average)")
  _validate_prompt_steps(cfg)
  if cfg.train.init_from_step < -1:
    raise ValueError(f"train.init_from_step={cfg.train.init_from_step} must be a step or -1 (latest)")
  if cfg.checkpoint.every_steps <= 0 or cfg.checkpoint.keep <= 0:
    raise ValueError(f"checkpoint.every_steps={cfg.checkpoint.every_steps} and "
                     f"checkpoint.keep={cfg.checkpoint.keep} must be positive")
  for name in cfg.evals.run:
    if name not in EVALUATORS:
      raise ValueError(f"evals.run names {name!r}, not one of {EVALUATORS}")
  _validate_text_data(cfg)
  ev = cfg.evals.passkey
  if any(not 0.0 <= d <= 1.0 for d in ev.depths):
    raise ValueError(f"evals.passkey.depths={tuple(ev.depths)} must lie in [0, 1]")
  if ev.chunk_blocks <= 0 or ev.samples <= 0:
    raise ValueError("evals.passkey.chunk_blocks and evals.passkey.samples must be positive")
  if "sorting" in cfg.evals.run:
    _validate_sorting_eval(cfg)
  _validate_niah(cfg)


def _validate_sorting_eval(cfg):
  ev = cfg.evals.sorting
  for name in ("samples", "batch_size", "chunk_blocks"):
    if ev[name] <= 0:
      raise ValueError(f"evals.sorting.{name}={ev[name]} must be positive")
  for n in ev.lengths:
    if n <= 20:
      raise ValueError(f"evals.sorting.lengths={tuple(ev.lengths)}: every length must exceed 20 "
                       "(the sorted answer)")


def _validate_text_data(cfg):
  from longctx.data.sources import BOOKSUM_SOURCES, TEXT_SOURCES
  from longctx.data.tokenizers import TOKENIZER_NAMES
  data = cfg.data
  if data.tokenizer not in TOKENIZER_NAMES:
    raise ValueError(f"data.tokenizer={data.tokenizer!r} is not one of {TOKENIZER_NAMES}")
  if data.tokenizer == "sentencepiece" and not data.tokenizer_path:
    raise ValueError("data.tokenizer_path is empty: data.tokenizer='sentencepiece' needs a .model "
                     "file (scripts/train_tokenizer.py trains one)")
  allowed = {"text": TEXT_SOURCES, "booksum": BOOKSUM_SOURCES}.get(data.task)
  if allowed and data.source not in allowed:
    raise ValueError(f"data.source={data.source!r} is not one of {allowed} (data.task={data.task!r})")
  if allowed and data.source == "local" and not data.path:
    raise ValueError(f"data.path is empty: data.source='local' needs "
                     f"{'a folder of .txt files' if data.task == 'text' else 'a JSONL file'}")
  lm, bs = cfg.evals.lm, cfg.evals.booksum
  if lm.source and lm.source not in TEXT_SOURCES:
    raise ValueError(f"evals.lm.source={lm.source!r} is not one of {TEXT_SOURCES} (or '')")
  if lm.chunk_blocks <= 0 or lm.max_docs < 0 or lm.max_tokens < 0:
    raise ValueError("evals.lm.chunk_blocks must be positive, evals.lm.max_docs and "
                     "evals.lm.max_tokens >= 0 (0: all)")
  if bs.source and bs.source not in BOOKSUM_SOURCES:
    raise ValueError(f"evals.booksum.source={bs.source!r} is not one of {BOOKSUM_SOURCES} (or '')")
  if bs.max_new_tokens <= 0 or bs.chunk_blocks <= 0 or bs.temperature < 0 or not 0 < bs.top_p <= 1:
    raise ValueError("evals.booksum: max_new_tokens and chunk_blocks must be positive, temperature "
                     f">= 0 and top_p in (0, 1] (got {bs.max_new_tokens}, {bs.chunk_blocks}, "
                     f"{bs.temperature}, {bs.top_p})")



def _validate_niah(cfg):
  from longctx.data.niah import HAYSTACKS, NEEDLE_TYPES
  for field, section in (("data.niah", cfg.data.niah), ("evals.niah", cfg.evals.niah)):
    if not section.needles or any(n not in NEEDLE_TYPES for n in section.needles):
      raise ValueError(f"{field}.needles={tuple(section.needles)} must be a non-empty tuple of "
                       f"{NEEDLE_TYPES}")
    if section.haystack not in HAYSTACKS:
      raise ValueError(f"{field}.haystack={section.haystack!r} is not one of {HAYSTACKS}")
    if section.haystack == "files" and not section.files:
      raise ValueError(f"{field}.files is empty: haystack='files' needs text file paths")
    if section.digits < 1:
      raise ValueError(f"{field}.digits={section.digits} must be >= 1")
  ev = cfg.evals.niah
  if any(not 0.0 <= d <= 1.0 for d in ev.depths):
    raise ValueError(f"evals.niah.depths={tuple(ev.depths)} must lie in [0, 1]")
  if ev.chunk_blocks <= 0 or ev.samples <= 0:
    raise ValueError("evals.niah.chunk_blocks and evals.niah.samples must be positive")
