"""The decoder: token embedding -> pre-norm blocks (RMSNorm, attention, SwiGLU) -> RMSNorm -> LM head.

The attention variant comes from the config (longctx.layers). The decoder itself runs ONE block of
tokens with the memory of every layer; longctx.models.scan runs it over a whole sequence.

Two generic hooks (used by the baselines of issue 7, inert for the other attentions):
  - auxiliary losses: an attention layer may return (y, memory, aux) with aux [B] an already
    weighted per-example loss (compressive's attention reconstruction); `forward_with_aux` sums
    them over layers and the scan driver adds their mean to the training loss;
  - an embedding-level memory (`make_token_memory`, RMT's memory tokens): it extends each block
    before the first layer and takes its new state from the final-normed output; its memory is
    one more entry after the per-layer entries of the memory tuple.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from longctx.layers import make_attention, make_token_memory


class SwiGLU(nnx.Module):

  def __init__(self, d_model: int, hidden: int, *, dtype, rngs: nnx.Rngs):
    linear = lambda i, o: nnx.Linear(i, o, use_bias=False, dtype=dtype, rngs=rngs)
    self.gate, self.up, self.down = linear(d_model, hidden), linear(d_model, hidden), linear(hidden, d_model)

  def __call__(self, x):
    return self.down(jax.nn.silu(self.gate(x)) * self.up(x))


class DecoderLayer(nnx.Module):

  def __init__(self, model_cfg, rngs: nnx.Rngs, layer_index: int = 0):
    dtype = jnp.dtype(model_cfg.dtype)
    self.attn_norm = nnx.RMSNorm(model_cfg.d_model, dtype=dtype, rngs=rngs)
    self.attention = make_attention(model_cfg, rngs, layer_index)
    self.mlp_norm = nnx.RMSNorm(model_cfg.d_model, dtype=dtype, rngs=rngs)
    self.mlp = SwiGLU(model_cfg.d_model, model_cfg.mlp_dim, dtype=dtype, rngs=rngs)

  def __call__(self, x, memory, *, positions, reset):
    """-> (x, memory, aux) where aux is the attention's auxiliary loss [B] or None."""
    a, memory, *aux = self.attention(self.attn_norm(x), memory, positions=positions, reset=reset)
    x = x + a.astype(x.dtype)
    x = x + self.mlp(self.mlp_norm(x)).astype(x.dtype)
    return x, memory, (aux[0] if aux else None)


class Decoder(nnx.Module):
  """Block-recurrent decoder. Memory: a tuple with one pytree per layer (then the token memory's,
  if the model has one)."""

  def __init__(self, model_cfg, rngs: nnx.Rngs):
    # Plain fields, not the ConfigDict: the graphdef must stay hashable and static.
    self.attention_name = model_cfg.attention
    self.block_len = model_cfg.block_len
    self.tie_embeddings = model_cfg.tie_embeddings
    self.dtype = jnp.dtype(model_cfg.dtype)
    self.embed = nnx.Embed(model_cfg.vocab_size, model_cfg.d_model, rngs=rngs)
    self.layers = nnx.List([DecoderLayer(model_cfg, rngs, i) for i in range(model_cfg.num_layers)])
    self.token_memory = make_token_memory(model_cfg, rngs)
    self.final_norm = nnx.RMSNorm(model_cfg.d_model, dtype=self.dtype, rngs=rngs)
    if not model_cfg.tie_embeddings:
      self.lm_head = nnx.Linear(model_cfg.d_model, model_cfg.vocab_size, use_bias=False,
                                dtype=self.dtype, rngs=rngs)

  def block_len_for(self, seq_len: int) -> int:
    """`full` attention has no block recurrence: the whole sequence is one block."""
    return seq_len if self.attention_name == "full" else self.block_len

  def init_memory(self, batch: int):
    memory = tuple(layer.attention.init_memory(batch) for layer in self.layers)
    if self.token_memory is not None:
      memory += (self.token_memory.init_memory(batch),)
    return memory

  def __call__(self, tokens, memory, *, positions, reset):
    """tokens, positions [B, L]; reset [B] -> (logits [B, L, V] float32, new memory)."""
    logits, memory, _ = self.forward_with_aux(tokens, memory, positions=positions, reset=reset)
    return logits, memory

  def forward_with_aux(self, tokens, memory, *, positions, reset):
    """As __call__, plus the layers' auxiliary losses summed: [B] float32, or None if no layer
    has one (a static property of the model)."""
    x = self.embed(tokens).astype(self.dtype)
    layer_memory = memory[:len(self.layers)]
    if self.token_memory is not None:
      x, positions, token_mem = self.token_memory.extend(x, memory[-1], positions, reset)
    new_memory, aux_losses = [], []
    for layer, mem in zip(self.layers, layer_memory):
      x, mem, aux = layer(x, mem, positions=positions, reset=reset)
      new_memory.append(mem)
      if aux is not None:
        aux_losses.append(aux.astype(jnp.float32))
    x = self.final_norm(x)
    if self.token_memory is not None:
      x, token_mem = self.token_memory.split(x)
      new_memory.append(token_mem)
    if self.tie_embeddings:
      logits = self.embed.attend(x)
    else:
      logits = self.lm_head(x)
    aux = sum(aux_losses) if aux_losses else None
    return logits.astype(jnp.float32), tuple(new_memory), aux
