"""The decoder: token embedding -> pre-norm blocks (RMSNorm, attention, SwiGLU) -> RMSNorm -> LM head.

The attention variant comes from the config (longctx.layers). The decoder itself runs ONE block of
tokens with the memory of every layer; longctx.models.scan runs it over a whole sequence.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from longctx.layers import make_attention


class SwiGLU(nnx.Module):

  def __init__(self, d_model: int, hidden: int, *, dtype, rngs: nnx.Rngs):
    linear = lambda i, o: nnx.Linear(i, o, use_bias=False, dtype=dtype, rngs=rngs)
    self.gate, self.up, self.down = linear(d_model, hidden), linear(d_model, hidden), linear(hidden, d_model)

  def __call__(self, x):
    return self.down(jax.nn.silu(self.gate(x)) * self.up(x))


class DecoderLayer(nnx.Module):

  def __init__(self, model_cfg, rngs: nnx.Rngs):
    dtype = jnp.dtype(model_cfg.dtype)
    self.attn_norm = nnx.RMSNorm(model_cfg.d_model, dtype=dtype, rngs=rngs)
    self.attention = make_attention(model_cfg, rngs)
    self.mlp_norm = nnx.RMSNorm(model_cfg.d_model, dtype=dtype, rngs=rngs)
    self.mlp = SwiGLU(model_cfg.d_model, model_cfg.mlp_dim, dtype=dtype, rngs=rngs)

  def __call__(self, x, memory, *, positions, reset):
    a, memory = self.attention(self.attn_norm(x), memory, positions=positions, reset=reset)
    x = x + a.astype(x.dtype)
    x = x + self.mlp(self.mlp_norm(x)).astype(x.dtype)
    return x, memory


class Decoder(nnx.Module):
  """Block-recurrent decoder. Memory: a tuple with one pytree per layer."""

  def __init__(self, model_cfg, rngs: nnx.Rngs):
    # Plain fields, not the ConfigDict: the graphdef must stay hashable and static.
    self.attention_name = model_cfg.attention
    self.block_len = model_cfg.block_len
    self.tie_embeddings = model_cfg.tie_embeddings
    self.dtype = jnp.dtype(model_cfg.dtype)
    self.embed = nnx.Embed(model_cfg.vocab_size, model_cfg.d_model, rngs=rngs)
    self.layers = nnx.List([DecoderLayer(model_cfg, rngs) for _ in range(model_cfg.num_layers)])
    self.final_norm = nnx.RMSNorm(model_cfg.d_model, dtype=self.dtype, rngs=rngs)
    if not model_cfg.tie_embeddings:
      self.lm_head = nnx.Linear(model_cfg.d_model, model_cfg.vocab_size, use_bias=False,
                                dtype=self.dtype, rngs=rngs)

  def block_len_for(self, seq_len: int) -> int:
    """`full` attention has no block recurrence: the whole sequence is one block."""
    return seq_len if self.attention_name == "full" else self.block_len

  def init_memory(self, batch: int):
    return tuple(layer.attention.init_memory(batch) for layer in self.layers)

  def __call__(self, tokens, memory, *, positions, reset):
    """tokens, positions [B, L]; reset [B] -> (logits [B, L, V] float32, new memory)."""
    x = self.embed(tokens).astype(self.dtype)
    new_memory = []
    for layer, mem in zip(self.layers, memory):
      x, mem = layer(x, mem, positions=positions, reset=reset)
      new_memory.append(mem)
    x = self.final_norm(x)
    if self.tie_embeddings:
      logits = self.embed.attend(x)
    else:
      logits = self.lm_head(x)
    return logits.astype(jnp.float32), tuple(new_memory)
