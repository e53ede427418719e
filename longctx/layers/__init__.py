"""One file per memory mechanism; `make_attention` builds the one a model config names."""
import jax.numpy as jnp
from flax import nnx

from longctx.layers.compressive import CompressiveAttention
from longctx.layers.fam import FeedbackAttentionMemory
from longctx.layers.infini import InfiniAttention
from longctx.layers.infinity_former import InfinityFormerAttention
from longctx.layers.local import (BlockSlidingWindowAttention, FullAttention,
                                  TransformerXLAttention)
from longctx.layers.memorizing import MemorizingAttention
from longctx.layers.rmt import RecurrentMemoryTokens
from longctx.layers.titans import make_titans

ATTENTION_NAMES = ("full", "bswa", "xl", "infini", "fam", "infinity_former", "titans", "memorizing",
                   "compressive", "rmt")


def make_attention(model_cfg, rngs: nnx.Rngs, layer_index: int = 0):
  """Builds the attention layer named by model_cfg.attention (a validated model config) for layer
  `layer_index` (0-based). Only `memorizing` depends on the index: layers outside
  model.memorizing.layers (when that tuple is non-empty) are Transformer-XL layers."""
  common = dict(dtype=jnp.dtype(model_cfg.dtype), rope_theta=model_cfg.rope_theta, rngs=rngs)
  d, h, name = model_cfg.d_model, model_cfg.num_heads, model_cfg.attention
  if name == "memorizing" and model_cfg.memorizing.layers and (
      layer_index not in tuple(model_cfg.memorizing.layers)):
    name = "xl"
  if name in ("full", "rmt"):  # rmt: causal attention inside the extended block (layers/rmt.py)
    return FullAttention(d, h, **common)
  if name == "bswa":
    return BlockSlidingWindowAttention(d, h, block_len=model_cfg.block_len,
                                       mem_blocks=model_cfg.bswa.mem_blocks,
                                       stop_grad=model_cfg.bswa.stop_grad, **common)
  if name == "xl":
    return TransformerXLAttention(d, h, block_len=model_cfg.block_len,
                                  mem_blocks=model_cfg.xl.mem_blocks, **common)
  if name == "infini":
    return InfiniAttention(d, h, update_rule=model_cfg.infini.update_rule,
                           gate_init=model_cfg.infini.gate_init, eps=model_cfg.infini.eps,
                           compensated_sum=model_cfg.infini.compensated_sum, **common)
  if name == "fam":
    return FeedbackAttentionMemory(d, h, block_len=model_cfg.block_len, fam_len=model_cfg.fam.fam_len,
                                   mem_blocks=model_cfg.fam.mem_blocks,
                                   state_norm=model_cfg.fam.state_norm, **common)
  if name == "infinity_former":
    c = model_cfg.infinity_former
    return InfinityFormerAttention(d, h, block_len=model_cfg.block_len, stm_blocks=c.stm_blocks,
                                   num_basis=c.num_basis, basis_widths=tuple(c.basis_widths),
                                   ridge_lambda=c.ridge_lambda, tau=c.tau,
                                   num_samples=c.num_samples, sticky=c.sticky,
                                   num_bins=c.num_bins, min_var=c.min_var,
                                   stop_grad=c.stop_grad, kl_weight=c.kl_weight,
                                   kl_sigma0=c.kl_sigma0, kl_mu0=c.kl_mu0,
                                   write_mask=c.write_mask, tau_schedule=c.tau_schedule,
                                   sticky_draw=c.sticky_draw, draw_seed=layer_index, **common)
  if name == "titans":
    return make_titans(model_cfg, rngs)
  if name == "memorizing":
    mc = model_cfg.memorizing
    return MemorizingAttention(d, h, block_len=model_cfg.block_len,
                               mem_blocks=model_cfg.xl.mem_blocks, capacity=mc.capacity,
                               top_k=mc.top_k, gate_init=mc.gate_init, scale_init=mc.scale_init,
                               approximate=mc.approximate, recall_target=mc.recall_target,
                               **common)
  if name == "compressive":
    cc = model_cfg.compressive
    return CompressiveAttention(d, h, block_len=model_cfg.block_len,
                                mem_blocks=model_cfg.xl.mem_blocks,
                                compressed_len=cc.compressed_len, rate=cc.rate,
                                recon_weight=cc.recon_weight, **common)
  raise ValueError(f"model.attention={name!r} is not one of {ATTENTION_NAMES}")


def make_token_memory(model_cfg, rngs: nnx.Rngs):
  """The embedding-level memory the decoder wraps each block with (RMT's memory tokens), or None."""
  if model_cfg.attention == "rmt":
    return RecurrentMemoryTokens(model_cfg.d_model, model_cfg.rmt.num_tokens, rngs=rngs)
  return None
