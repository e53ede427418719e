"""Optimizers from config: AdamW or Adafactor, linear warmup then cosine decay, global-norm clipping."""
import optax

OPTIMIZERS = ("adamw", "adafactor")


def learning_rate_schedule(train_cfg):
  """0 -> lr over warmup_steps, then cosine to lr * min_lr_ratio at train.steps."""
  warmup = min(train_cfg.warmup_steps, max(train_cfg.steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=train_cfg.lr, warmup_steps=warmup,
      decay_steps=max(train_cfg.steps, warmup + 1), end_value=train_cfg.lr * train_cfg.min_lr_ratio)


def make_optimizer(train_cfg, param_labels=None):
  """Returns (optax transformation, schedule). param_labels: None (train everything) or a function
  params -> a tree of 'train' / 'frozen' (e.g. LoRA: longctx.layers.lora.trainable_labels); frozen
  parameters get zero updates and are left out of clipping and optimizer state."""
  schedule = learning_rate_schedule(train_cfg)
  if train_cfg.optimizer == "adamw":
    opt = optax.adamw(schedule, b1=train_cfg.b1, b2=train_cfg.b2, weight_decay=train_cfg.weight_decay)
  elif train_cfg.optimizer == "adafactor":
    # Adafactor as in T5/Infini (Table 2 setup): factored second moments, momentum b1 if > 0.
    opt = optax.adafactor(schedule, momentum=train_cfg.b1 or None,
                          weight_decay_rate=train_cfg.weight_decay or None)
  else:
    raise ValueError(f"train.optimizer={train_cfg.optimizer!r} is not one of {OPTIMIZERS}")
  if train_cfg.grad_clip > 0:
    opt = optax.chain(optax.clip_by_global_norm(train_cfg.grad_clip), opt)
  if param_labels is not None:
    opt = optax.multi_transform({"train": opt, "frozen": optax.set_to_zero()}, param_labels)
  return opt, schedule
