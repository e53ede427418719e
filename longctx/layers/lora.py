"""LoRA (low-rank adaptation) of the attention and MLP projections, for every architecture.

TransformerFAM is obtained by fine-tuning a pretrained model with LoRA rank 64 on attention and
feed-forward, merged at inference (papers.md 1(b)). `add_lora` replaces the named projections of each
decoder layer by `LoRALinear` (sharing the base kernel); `merge_lora` folds the factors into the
kernels so the merged parameters load into the same config with `lora.rank = 0`; `trainable_labels`
marks what trains when LoRA is on: the LoRA factors and the FAM prompt (prompt tuning) and state
norm, nothing else.

Scale: y = x W + (alpha / r) x A B with alpha = `lora.alpha`, or alpha = r (scale 1) when
`lora.alpha = 0` (the paper gives no alpha). B starts at zero, so a LoRA model starts as its base.
"""
import jax
import jax.numpy as jnp
from flax import nnx

ATTENTION_TARGETS = ("query", "key", "value", "out")
MLP_TARGETS = ("gate", "up", "down")
LORA_TARGETS = ATTENTION_TARGETS + MLP_TARGETS
LORA_PARAMS = ("lora_a", "lora_b")
# New with FAM, so also trained under LoRA (and absent from a pretrained source, see warm_start):
# the prompt and the optional FAM state norm.
TRAINED_WITH_LORA = LORA_PARAMS + ("feedback_prompt", "state_norm")


def lora_scale(rank: int, alpha: float) -> float:
  return (alpha or rank) / rank


class LoRALinear(nnx.Module):
  """A bias-free nnx.Linear plus a rank-r update; `kernel` is the base layer's own parameter."""

  def __init__(self, base: nnx.Linear, rank: int, alpha: float, rngs: nnx.Rngs):
    d_in, d_out = base.kernel.shape
    self.kernel = base.kernel
    self.dtype = base.dtype
    self.scale = lora_scale(rank, alpha)
    self.lora_a = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (d_in, rank)))
    self.lora_b = nnx.Param(jnp.zeros((rank, d_out), jnp.float32))

  def __call__(self, x):
    dtype = self.dtype or x.dtype
    x = x.astype(dtype)
    low_rank = (x @ self.lora_a[...].astype(dtype)) @ self.lora_b[...].astype(dtype)
    return x @ self.kernel[...].astype(dtype) + low_rank * self.scale


def add_lora(layers, rank: int, alpha: float, targets, rngs: nnx.Rngs):
  """Replaces the `targets` projections of every decoder layer (attention: query/key/value/out, MLP:
  gate/up/down) by LoRALinear, in place."""
  for layer in layers:
    for parent, names in ((layer.attention, ATTENTION_TARGETS), (layer.mlp, MLP_TARGETS)):
      for name in names:
        if name in targets:
          setattr(parent, name, LoRALinear(getattr(parent, name), rank, alpha, rngs))


def merge_lora_params(params, scale: float):
  """Each LoRALinear {kernel, lora_a, lora_b} of a pure-dict tree -> {kernel: kernel + scale A B}."""
  if not isinstance(params, dict):
    return params
  if "lora_a" in params:
    kernel = params["kernel"]
    return {"kernel": kernel + scale * (params["lora_a"] @ params["lora_b"]).astype(kernel.dtype)}
  return {k: merge_lora_params(v, scale) for k, v in params.items()}


def merge_lora(params, model_cfg):
  """params (a pure dict of a LoRA model) -> (params of the same model without LoRA, its config)."""
  merged_cfg = model_cfg.copy_and_resolve_references()
  merged_cfg.lora.rank = 0
  return merge_lora_params(params, lora_scale(model_cfg.lora.rank, model_cfg.lora.alpha)), merged_cfg


def trainable_labels(params):
  """'train' for the LoRA factors and FAM's own parameters, 'frozen' for everything else."""
  def label(path, _):
    names = {getattr(k, "key", getattr(k, "name", None)) for k in path}
    return "train" if names & set(TRAINED_WITH_LORA) else "frozen"
  return jax.tree_util.tree_map_with_path(label, params)
