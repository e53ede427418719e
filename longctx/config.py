"""Config defaults and argument parsing shared by every configs/<task>/<arch>.py (the checks are in
config_checks.py, re-exported here).

Configs are ml_collections.ConfigDicts, locked after `finalize`, so a mistyped key fails. Errors a
user can cause raise one ValueError naming the field.
"""
import ml_collections

# The checks live in config_checks.py (kept apart so this file stays the defaults and parsing);
# their public names are part of this module's API.
from longctx.config_checks import (DTYPES, REMAT_POLICIES, validate,  # noqa: F401
                                   validate_model, validate_seq_len)


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
      # A block with no weighted target skips the top layer's feed-forward and the head (exact:
      # same loss, gradients and memory; models/scan.py block_step).
      skip_unscored_outputs=True,
      bswa=dict(mem_blocks=1, stop_grad=False),
      xl=dict(mem_blocks=1),
      # compensated_sum: Kahan sums of M and z (not in the paper; layers/infini.py). Off: it
      # changed no passkey score up to 1M and doubles the memory carried per block.
      infini=dict(update_rule="linear", gate_init=0.0, eps=1e-6, compensated_sum=False),
      # infinity-former (layers/infinity_former.py); defaults = official sorting code
      infinity_former=dict(stm_blocks=1, num_basis=512, basis_widths=(0.01, 0.05),
                           ridge_lambda=1.0, tau=0.75, num_samples=512, sticky=False,
                           num_bins=128, min_var=1e-6, stop_grad=True,
                           # KL(N(mu, var) || N(mu0, sigma0^2)) on the LTM densities: official code
                           # only, not in the paper; off (0) by default. kl_mu0 < 0: no mean term.
                           kl_weight=0.0, kl_sigma0=0.05, kl_mu0=-1.0,
                           # sigmoid(Conv1d k=3) gate on the vectors written to the LTM: official
                           # code's `mask` (on in its sorting config), not in the paper; off.
                           write_mask=False,
                           # 'fixed' (the paper): every contraction squeezes the past into [0, tau].
                           # 'equal' (not in the paper): tau_n = n / (n + 1), every block keeps an
                           # equal share of [0, 1] (layers/infinity_former.py).
                           tau_schedule="fixed",
                           # sticky points: 'quantile' (deterministic histogram quantiles) or
                           # 'categorical' (the official code's random draw of bins' left edges).
                           sticky_draw="quantile"),
      # TransformerFAM (Table 4 defaults): FAM length L_F, BSWA memory blocks next to the FAM.
      # state_norm (not in the paper, off = Algorithm 2): RMSNorm (learned scale) on the FAM before
      # it is carried, which stops its linear growth with blocks (experiments/fam attempts 4-6).
      fam=dict(fam_len=64, mem_blocks=3, state_norm=False),
      # LoRA on the attention and MLP projections (rank 0: off). With LoRA on, only the LoRA factors
      # (and a FAM prompt) are trained; longctx.layers.lora.merge_lora folds them in for inference.
      lora=dict(rank=0, alpha=0.0, targets=("query", "key", "value", "out", "gate", "up", "down")),
      # Titans (longctx/layers/titans.py, titans_arch.py); a MAC segment is one block.
      titans=dict(
          variant="mac",          # lmm | mac | mag | mal
          memory_depth=2,         # L_M: layers of the memory MLP (1 = linear matrix memory)
          memory_expansion=2,     # hidden width of the memory MLP = expansion * head dim
          chunk_size=16,          # b: tokens per mini-batch of the inner gradient descent
          gates="token",          # token | chunk: data-dependent theta/eta/alpha per token or chunk
          momentum=True,          # eta_t S_{t-1} term (eq. 14); False: S_t = -theta_t grad
          decay=True,             # forgetting alpha_t (eq. 13); False: alpha_t = 0
          conv=True, conv_width=4,  # causal depthwise convolution after the q/k/v projections
          persistent_tokens=4,    # N_p learned tokens every query sees (MAC/MAG/MAL)
          window_blocks=1,        # MAG/MAL sliding window: the block + this many earlier blocks
          output_gate="sigmoid",  # MAC/MAG's (x): sigmoid | mix (layers/titans_arch.py)
          # theta_t = max_lr * sigmoid(.). Was 0.1: MAC and MAG trained on S-NIAH (configs/niah
          # cpu) hit a NaN loss at steps 102 and 35, the inner loop diverging: a chunk of b
          # near-identical tokens sums b equal gradients and momentum amplifies them by
          # 1 / (1 - eta); with one repeated token (tests/test_neural_memory.py) it diverges at
          # theta 0.1 for eta >= 0.5 and at 0.02 only for eta >= 0.85. The paper gives no value.
          max_lr=0.02,
          # eta_t = max_momentum * sigmoid(.), as max_lr caps theta; 1.0 = the paper's gate (no
          # cap). Not in the paper. A trained MAC reached eta 0.998 (momentum that barely decays,
          # amplifying each step by up to 1 / (1 - eta)); a cap below 1 bounds that amplification
          # whatever the learned scales do (experiments/titans/README.md, attempt 8).
          max_momentum=1.0,
          # Clip each token's inner-loop gradient (all memory layers together) to this norm; 0 =
          # off. Not in the paper (LUCID's max_grad_norm); without it MAC hit NaN losses on S-NIAH
          # at alpha_bias -7/-8 (steps 103, 364). experiments/titans/README.md.
          max_grad_norm=1.0,
          # Initial gate biases (pre-sigmoid): theta 0.01 (half of max_lr), eta 0.73, alpha 3.4e-4.
          # The paper gives none. alpha was 0.018 (bias -4): a depth-2 memory then decays into
          # W = 0 within a few hundred tokens, a saddle where every gradient is zero, so it never
          # writes again and MAC/MAG/MAL/LMM sat at chance on S-NIAH (tests/test_neural_memory.py,
          # experiments/titans/README.md). With little forgetting the weights grow and the inner
          # loop can diverge: hence max_grad_norm above.
          theta_bias=0.0, eta_bias=1.0, alpha_bias=-8.0,
          normalize_values=True,  # l2-normalise v like k (stability; see layers/titans.py)
          # What forgetting pulls the memory towards: 'zero' (eq. 13) or 'initial', the learned
          # W_0 (W_t = (1 - alpha_t) W_{t-1} + alpha_t W_0 + S_t). Not in the paper: with eq. 13
          # trained MAG/MAL erased W_0 over about the training length (README, attempt 10).
          forget_to="zero",
          # MAC writes its memory with the attention output y (eq. 24), the one memory input that
          # no pre-norm reaches: RMSNorm(y) feeds the write, the read-again and the gates. Off,
          # a trained MAC's y grew to RMS 7.5, saturated eta at 1 (momentum that never decays),
          # and the memory weights grew without bound (experiments/titans/README.md, attempt 8).
          mac_write_norm=True,
          remat_chunks=True,      # recompute per-token memory weights in the backward pass
          chunk_unroll=1,         # chunks per iteration of the chunk loop (lax.scan unroll)
      ),
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
      # A length curriculum: ((step, seq_len), ...) trains on seq_len-token examples from that step
      # on (data.seq_len before the first); one compile per length. Tasks of fresh examples only.
      seq_len_schedule=(),
      key_len=5,                  # digits of the pass key
      depth_range=(0.0, 1.0),     # training key depths, uniform
      other_weight=0.0,           # loss weight of the non-answer tokens
      # passkey + infini only, not in the paper: > 1 writes each training prompt's filler into the
      # compressive memory r times over, r log-uniform in [1, this] per example, so that a short
      # prompt's filler weighs what a long one's would (data/passkey.training_batch). 1 = off.
      filler_weight_max=1.0,
      filler_weight_from_step=0,  # ... from this training step on (before it: 1)
      # ((step, r_max), ...): from that step on the largest r is r_max (filler_weight_max before
      # the first), e.g. to give each stage of data.seq_len_schedule its own memory mass.
      filler_weight_schedule=(),
      # ... spread over each filler span 'uniform' (r per token) or 'geometric' (growing, so each
      # block is written under a memory of about the mass a real long prompt's would hold).
      filler_weight_profile="uniform",
      # passkey and S-NIAH's noise haystack, not in the papers: each training prompt's filler
      # stream starts at a random token of its cycle, so the text between a late key and the
      # question varies (data/passkey.py, data/niah.py).
      random_filler_phase=False,
      # passkey, not in the papers: probability that a training key sits at depth 1 (in the
      # answer's block, read locally); uniform depths: 11% of 512-token prompts, 1.4% of 2K.
      end_depth_prob=0.0,
      # passkey, not in the papers: probability that a training prompt is drawn again until a
      # block boundary (model.block_len) cuts a copy of its key; uniform depths: ~6% of prompts.
      cut_key_prob=0.0,
      # Fresh-example tasks, not in the papers: from memory_carry_from_step on, each example keeps
      # with probability memory_carry_prob the memory its predecessor in the same batch row left
      # (stop-gradient, as FAM's RSP), so a short prompt is read through a memory that earlier
      # prompts already filled over many blocks (data/sources.document_resets). 0 = off.
      memory_carry_prob=0.0,
      memory_carry_from_step=0,
      # passkey, not in the papers: from prompt_steps_from_step on, each batch row's prompts are
      # n * seq_len tokens long, n uniform in 1..prompt_steps, each fed over n consecutive steps
      # with the memory carried between them (stop-gradient; the loss on its answer in its last
      # step), so a block-recurrent model is trained to hold a key over up to prompt_steps times
      # the blocks one step backpropagates through (data/sources.PasskeySource). 1 = off.
      prompt_steps=1,
      prompt_steps_from_step=0,
      # With prompt_steps > 1, not in the papers: with probability prompt_steps_short_prob a
      # row's prompt is instead one prompt_steps_short_len-token prompt at the start of one step
      # (the rest of the row unscored, after the answer, so causally unseen), so the short
      # prompts of the first stage stay in the mix. 0 = off.
      prompt_steps_short_prob=0.0,
      prompt_steps_short_len=0,
      # text / booksum tasks (longctx/data/sources.py):
      source="local",             # text: 'pg19' | 'local'; booksum: 'booksum' | 'local'
      path="",                    # local: a folder of .txt files (text) or a JSONL file (booksum)
      split="train",              # tfds split (pg19: train/validation/test)
      tfds_data_dir="",           # where `tfds build ... --file_format=array_record` wrote the data
      tokenizer_path="",          # data.tokenizer='sentencepiece': the .model file
      shuffle=True,               # reshuffle documents every epoch (seeded by data.seed)
      booksum_config="book",      # tfds booksum config: 'book' | 'chapter'
      booksum_prompt_weight=0.0,  # loss weight of the prompt (document) tokens; the summary has 1
      # task 'niah' (longctx/data/niah.py): needle types drawn uniformly, haystack noise | files
      niah=dict(needles=("passkey", "number", "word"), haystack="noise", files=(), digits=7),
  ))
  cfg.train = ml_collections.ConfigDict(dict(
      steps=1000, seed=0, optimizer="adamw", lr=1e-3, warmup_steps=100, min_lr_ratio=0.1,
      b1=0.9, b2=0.99, weight_decay=0.0, grad_clip=1.0, log_every=10,
      compile_only=False,         # lower + compile the train step on abstract inputs, then exit
      time_limit_minutes=0.0,     # > 0: stop training after this wall time (per launch), save, evaluate
      # FAM's length-extrapolation tricks (App. B.2), off by default; randomness from state["rng"].
      random_position_offset=False,  # RPO: per example, offset U[0, 2*pi*theta) with prob 0.5
      state_passing_prob=0.0,     # RSP: prob. that a step starts from the last step's FAM (0.8 paper)
      # > 0: keep an exponential moving average of the parameters (Polyak averaging; not in the
      # papers) in the train state, ema <- d * ema + (1 - d) * params after every step, started from
      # the parameters when switched on (also on resume); the evaluators then read the average.
      ema_decay=0.0,
      # Fine-tuning (longctx/warm_start.py): start from another run's parameters (its workdir or
      # checkpoints/ directory; step -1 = latest); leaves with a path component in init_from_fresh
      # may be missing there (LoRA factors, FAM's prompt and state norm) and keep their initial value.
      init_from="", init_from_step=-1,
      init_from_fresh=("lora_a", "lora_b", "feedback_prompt", "state_norm"),
  ))
  cfg.checkpoint = ml_collections.ConfigDict(dict(every_steps=100, keep=2, async_save=True))
  cfg.mesh = ml_collections.ConfigDict(dict(data=-1))  # -1: all devices on the data axis
  cfg.evals = ml_collections.ConfigDict(dict(
      run=("passkey",),
      passkey=dict(lengths=(1024,), depths=(0.0, 0.5, 1.0), samples=4, key_len=5, seed=1,
                   template="infini", chunk_blocks=16, jsonl="",
                   generate=False),  # also decode the answer greedily: generated exact match
      sorting=dict(lengths=(1024,), samples=8, batch_size=8, seed=1, chunk_blocks=16),
      # Held-out language modelling: bits per byte and token perplexity (longctx/evaluate_text.py).
      # source/path/split '' take data.source / data.path / 'validation'.
      lm=dict(source="", path="", split="", max_docs=0, max_tokens=0, chunk_blocks=16),
      # BookSum: decode a summary per document, ROUGE-1/2/L and their geometric mean. Infini Table 4:
      # 500K-token inputs, temperature 0.5, top-p 0.95, 1024 decoding steps.
      booksum=dict(source="", path="", split="test", max_examples=0, max_input_tokens=0,
                   max_new_tokens=1024, temperature=0.5, top_p=0.95, seed=0, chunk_blocks=16),
      niah=dict(lengths=(1024,), depths=(0.0, 0.5, 1.0), samples=4,
                needles=("passkey", "number", "word"), haystack="noise", files=(), digits=7,
                seed=1, chunk_blocks=16),
  ))
  return cfg


def load_common(config_file: str):
  """The `common.py` beside a config file, loaded by path under a name unique to its folder
  (`configs_<folder>_common`) and cached: every configs/<task>/ has its own common.py, so a plain
  `import common` would return whichever one a process imported first."""
  import importlib.util
  import os
  import sys
  folder = os.path.dirname(os.path.abspath(config_file))
  name = f"configs_{os.path.basename(folder)}_common"
  if name not in sys.modules:
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, "common.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
      spec.loader.exec_module(module)
    except BaseException:
      del sys.modules[name]
      raise
  return sys.modules[name]


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


def finalize(cfg):
  """Validates and locks a config; every get_config returns finalize(config)."""
  validate(cfg)
  cfg.lock()
  return cfg
