"""Train state, the jitted train step, and the training loop with checkpoints, resume and evals.

The train state is a plain pytree (dicts of arrays) so orbax, optax and jit all see the same thing:
  params     the decoder's parameters as a pure dict (nnx.merge(graphdef, params) rebuilds the model)
  opt_state  optax state
  step       int32 scalar: number of optimizer updates applied
  rng        uint32 raw key data (jax.random.key_data); split every step for RPO and RSP
  memory     the per-example memory carried across steps (reset per example by the data's `reset`)
"""
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax import nnx

from longctx import checkpoint as ckpt_lib
from longctx import evaluate as eval_lib
from longctx import optim, sharding, warm_start
from longctx.data import sources
from longctx.layers import lora
from longctx.models import scan
from longctx.models.decoder import Decoder
from longctx.writers import MetricWriter, ProgressLine, write_config


class TrainingDiverged(RuntimeError):
  """Raised when the loss becomes NaN/Inf; the last good checkpoint is kept."""


def build_model(cfg):
  """Returns (graphdef, params as a pure dict, model) from the model config."""
  model = Decoder(cfg.model, nnx.Rngs(cfg.train.seed))
  graphdef, state = nnx.split(model)
  return graphdef, nnx.to_pure_dict(state), model


def merged_for_inference(cfg, params):
  """LoRA folded into the kernels: (config with lora.rank 0, its graphdef, merged params)."""
  merged, model_cfg = lora.merge_lora(jax.device_get(params), cfg.model)
  eval_cfg = cfg.copy_and_resolve_references()
  eval_cfg.unlock()
  eval_cfg.model = model_cfg
  eval_cfg.lock()
  graphdef, _ = nnx.split(nnx.eval_shape(lambda: Decoder(model_cfg, nnx.Rngs(0))))
  return eval_cfg, graphdef, merged


def init_state(cfg, params, model, tx):
  state = {
      "params": params,
      "opt_state": tx.init(params),
      "step": jnp.zeros((), jnp.int32),
      "rng": jax.random.key_data(jax.random.key(cfg.train.seed)),
      "memory": model.init_memory(cfg.data.batch_size),
  }
  if cfg.train.ema_decay > 0:
    state["ema_params"] = _copy(params)
  return state


def _copy(tree):
  # A separate buffer per leaf: the state is donated, and one buffer cannot be donated twice.
  return jax.tree.map(jnp.copy, tree)


def ema_update(ema, params, decay: float):
  """ema + (1 - decay) * (params - ema): the moving average in a form that keeps float32 precision
  when decay is near 1 (no large product cancelling against another)."""
  return jax.tree.map(lambda e, p: e + (1.0 - decay) * (p - e).astype(e.dtype), ema, params)


def make_optimizer(cfg):
  """The optimizer from cfg.train; with LoRA on, only the LoRA factors (and a FAM prompt) train."""
  return optim.make_optimizer(cfg.train, lora.trainable_labels if cfg.model.lora.rank else None)


def random_position_offset(rng, batch: int, theta: float) -> jax.Array:
  """RPO (FAM App. B.2): per example an offset U[0, 2*pi*theta) (RoPE's longest wavelength), zero
  with probability 1/2. Decision: floored to an integer so positions stay integer token indices."""
  wave, coin = jax.random.split(rng)
  offset = jax.random.uniform(wave, (batch,), maxval=2 * jnp.pi * theta)
  offset = offset * jnp.round(jax.random.uniform(coin, (batch,)))
  return jnp.floor(offset).astype(jnp.int32)


def train_step(state, batch, *, graphdef, model_cfg, tx, schedule, train_cfg=None):
  """One optimizer update. Returns (new state, metrics); the state is donated by the caller.

  FAM's training tricks (train_cfg, off by default) draw from state["rng"]: RPO shifts every
  position of an example by a random offset; RSP (probability p, from step 1 on) starts this step
  from batch element 0's final FAM of the previous step (stop-gradient: the memory in the state)."""
  rng = jax.random.wrap_key_data(state["rng"])
  rng, offset_rng, pass_rng = jax.random.split(rng, 3)
  memory = state["memory"]
  if train_cfg is not None and train_cfg.random_position_offset:
    batch = scan.complete_batch(batch)
    offset = random_position_offset(offset_rng, batch["inputs"].shape[0], model_cfg.rope_theta)
    batch = dict(batch, positions=batch["positions"] + offset[:, None])
  if train_cfg is not None and train_cfg.state_passing_prob > 0:
    take = (jax.random.uniform(pass_rng) < train_cfg.state_passing_prob) & (state["step"] > 0)
    memory = nnx.merge(graphdef, state["params"]).pass_state(memory, take)
  grad_fn = jax.value_and_grad(scan.mean_loss, has_aux=True)
  (loss, (memory, outs)), grads = grad_fn(state["params"], graphdef, memory, batch, model_cfg)
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  weights = batch["weights"]
  scored = weights > 0
  metrics = {
      "loss": loss,
      "grad_norm": optax.tree.norm(grads),
      "param_norm": optax.tree.norm(params),
      "lr": schedule(state["step"]),
      # Accuracy on the tokens the loss weights (the passkey answer when other_weight = 0).
      "accuracy": jnp.sum(outs["correct"] * scored) / jnp.maximum(jnp.sum(scored), 1),
  }
  if "aux_loss" in outs:  # layers' auxiliary losses (already inside `loss`), for monitoring
    metrics["aux_loss"] = jnp.mean(outs["aux_loss"])
  new_state = dict(state, params=params, opt_state=opt_state, step=state["step"] + 1,
                   memory=jax.lax.stop_gradient(memory), rng=jax.random.key_data(rng))
  if "ema_params" in state:
    new_state["ema_params"] = ema_update(state["ema_params"], params, train_cfg.ema_decay)
  return new_state, metrics


def compile_train_step(cfg, graphdef, state, mesh, tx, schedule):
  """jit with explicit shardings and donated state; returns (jitted step, compiled, lowered batch)."""
  step_fn = functools.partial(train_step, graphdef=graphdef, model_cfg=cfg.model, tx=tx,
                              schedule=schedule, train_cfg=cfg.train)
  state_sh = sharding.state_shardings(state, mesh)
  batch_sh = sharding.batch_sharded(mesh)
  jitted = jax.jit(step_fn, in_shardings=(state_sh, batch_sh),
                   out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)
  return jitted, state_sh, batch_sh


def _abstract(tree, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree,
                      shardings)


def _check_finite(step, metrics):
  for k in ("loss", "grad_norm"):
    if not np.isfinite(metrics[k]):
      raise TrainingDiverged(
          f"{k} is {metrics[k]} at step {step}; training stopped. The last good checkpoint is kept "
          "(lower train.lr, raise train.warmup_steps or set train.grad_clip).")


def compile_only(cfg, mesh):
  """Lowers and compiles the train step on abstract state and batch: nothing is allocated, so a
  paper-scale config can be checked on a small machine. Returns XLA's memory analysis."""
  tx, schedule = make_optimizer(cfg)
  graphdef, _ = nnx.split(nnx.eval_shape(lambda: Decoder(cfg.model, nnx.Rngs(0))))

  def make_state():
    _, params, model = build_model(cfg)
    return init_state(cfg, params, model, tx)
  state = jax.eval_shape(make_state)
  jitted, state_sh, batch_sh = compile_train_step(cfg, graphdef, state, mesh, tx, schedule)
  # The longest length of a curriculum is the step's memory peak.
  b = cfg.data.batch_size
  t = max([cfg.data.seq_len] + [length for _, length in cfg.data.seq_len_schedule])
  batch = {k: jax.ShapeDtypeStruct((b, t) if kind == "token" else (b,), dt, sharding=batch_sh)
           for k, (kind, dt) in sources.batch_fields(cfg.data).items()}
  t0 = time.time()
  compiled = jitted.lower(_abstract(state, state_sh), batch).compile()
  analysis = compiled.memory_analysis()
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state["params"]))
  logging.info("Compiled the train step in %.1fs: %d parameters; memory analysis: %s",
               time.time() - t0, n_params, analysis)
  return {"compiled": True, "parameters": n_params, "seq_len": t, "memory_analysis": str(analysis)}


def train_and_evaluate(cfg, workdir: str):
  """Trains cfg.train.steps steps (resuming from workdir if a checkpoint is there), then evaluates."""
  mesh = sharding.make_mesh(cfg.mesh)
  sharding.check_batch_divisible(cfg.data.batch_size, mesh)
  if cfg.train.compile_only:
    # A compile check trains nothing: it leaves the workdir's training record (config.json,
    # config_changes.jsonl) alone and writes its config beside it.
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config_compile_only.json"), "w") as f:
      f.write(cfg.to_json_best_effort(indent=2))
    return compile_only(cfg, mesh)
  write_config(cfg.to_json_best_effort(indent=2), workdir)
  graphdef, params, model = build_model(cfg)
  checkpointer = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"),
                                       save_interval_steps=cfg.checkpoint.every_steps,
                                       max_to_keep=cfg.checkpoint.keep,
                                       async_save=cfg.checkpoint.async_save)
  resuming = checkpointer.latest_step() is not None
  if cfg.train.init_from and not resuming:
    params = warm_start.init_from_checkpoint(cfg, params, workdir)
  elif cfg.train.init_from:
    logging.info("Resuming %s: train.init_from=%s is not read again", workdir, cfg.train.init_from)
  tx, schedule = make_optimizer(cfg)
  state = init_state(cfg, params, model, tx)
  jitted, state_sh, batch_sh = compile_train_step(cfg, graphdef, state, mesh, tx, schedule)
  source = sources.make_train_source(cfg)

  ckpt_lib.install_sigterm_handler()
  start = 0
  if resuming:
    fresh_memory = state["memory"]
    state, meta = checkpointer.restore(None, _abstract(state, state_sh),
                                       restartable=("memory", "ema_params"))
    if "ema_params" in state and state["ema_params"] is None:
      # EMA switched on for a run saved without it: the average starts from the restored params.
      logging.info("%s: train.ema_decay=%g and the checkpoint holds no average; the average starts "
                   "from the step-%d parameters", workdir, cfg.train.ema_decay, int(state["step"]))
      state["ema_params"] = _copy(state["params"])
    if state["memory"] is None:
      # Only the memory carried across steps differs (another memory mechanism, e.g. a changed
      # infinity_former.sticky_draw, or another batch size): it restarts empty, like a new document.
      logging.warning("%s: the checkpoint's carried memory has another structure than this "
                      "config's; the memory restarts empty (parameters, optimizer state, step and "
                      "RNG are restored)", workdir)
      state["memory"] = fresh_memory
    start = int(state["step"])
    logging.info("Resumed from %s at step %d (data position %s)", workdir, start, meta)
    if hasattr(source, "restore"):   # streaming sources resume from the saved position directly
      source.restore(meta)
  state = jax.device_put(state, state_sh)

  writer = MetricWriter(workdir)
  progress = ProgressLine(cfg.train.steps, start)
  launched = time.time()
  try:
    for step in range(start, cfg.train.steps):
      if cfg.train.time_limit_minutes and time.time() - launched > 60 * cfg.train.time_limit_minutes:
        logging.warning("train.time_limit_minutes=%g reached after %d steps: stopping training here.",
                        cfg.train.time_limit_minutes, step)
        break
      t0 = time.time()
      batch = jax.device_put(source.batch(step), batch_sh)  # a new length compiles once more
      state, metrics = jitted(state, batch)
      metrics = jax.device_get(metrics)
      _check_finite(step, metrics)
      dt = time.time() - t0
      tokens = batch["inputs"].size
      metrics = dict(metrics, step_time=dt, tokens_per_sec=tokens / dt)
      done = step + 1
      if done % cfg.train.log_every == 0 or done == cfg.train.steps or done == start + 1:
        writer.write(done, metrics)
        progress.report(done, metrics)
      checkpointer.save(done, state, source.position(done))
      if ckpt_lib.should_stop():
        logging.warning("SIGTERM: saving step %d and exiting.", done)
        checkpointer.save(done, state, source.position(done), force=True)
        checkpointer.wait()
        return {"stopped_at": done, "params": jax.device_get(state["params"])}
    end = int(state["step"])
    checkpointer.save(end, state, source.position(end), force=True)
  finally:
    checkpointer.wait()
    writer.close()
  checkpointer.close()
  eval_params = state.get("ema_params", state["params"])
  if "ema_params" in state:
    logging.info("Evaluating the parameters' moving average (train.ema_decay=%g)",
                 cfg.train.ema_decay)
  eval_cfg, eval_graphdef = cfg, graphdef
  if cfg.model.lora.rank:  # inference on the merged weights (same logits, plain projections)
    eval_cfg, eval_graphdef, eval_params = merged_for_inference(cfg, eval_params)
  results = eval_lib.run_evaluators(eval_cfg, eval_graphdef, eval_params, workdir)
  out = {"final_step": end, "params": jax.device_get(state["params"]), "evals": results}
  if "ema_params" in state:
    out["ema_params"] = jax.device_get(state["ema_params"])
  return out
