"""The decoder: token embedding -> pre-norm blocks (RMSNorm, attention, SwiGLU) -> RMSNorm -> LM head.

The attention variant comes from the config (longctx.layers). The decoder itself runs ONE block of
tokens with the memory of every layer; longctx.models.scan runs it over a whole sequence.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from longctx.layers import make_attention, make_token_memory
from longctx.layers.base import apply_flat
from longctx.layers.lora import add_lora


class SwiGLU(nnx.Module):

  def __init__(self, d_model: int, hidden: int, *, dtype, rngs: nnx.Rngs):
    linear = lambda i, o: nnx.Linear(i, o, use_bias=False, dtype=dtype, rngs=rngs)
    self.gate, self.up, self.down = linear(d_model, hidden), linear(d_model, hidden), linear(hidden, d_model)

  def __call__(self, x):
    return apply_flat(lambda h: self.down(jax.nn.silu(self.gate(h)) * self.up(h)), x)


class DecoderLayer(nnx.Module):

  def __init__(self, model_cfg, rngs: nnx.Rngs, layer_index: int = 0):
    dtype = jnp.dtype(model_cfg.dtype)
    self.attn_norm = nnx.RMSNorm(model_cfg.d_model, dtype=dtype, rngs=rngs)
    self.attention = make_attention(model_cfg, rngs, layer_index)
    self.mlp_norm = nnx.RMSNorm(model_cfg.d_model, dtype=dtype, rngs=rngs)
    self.mlp = SwiGLU(model_cfg.d_model, model_cfg.mlp_dim, dtype=dtype, rngs=rngs)

  def feed_forward(self, x):
    return x + self.mlp(self.mlp_norm(x)).astype(x.dtype)

  def __call__(self, x, memory, *, positions, reset, prompt=None, write_weights=None,
               apply_feed_forward=True):
    """x [B, L, d_model] -> (x, memory, aux); aux is the attention's auxiliary loss [B] or None.

    apply_feed_forward=False (layers without feedback rows only) returns the residual stream after
    the attention, before the feed-forward: the decoder then applies `feed_forward` itself, only
    where the block's outputs are needed (Decoder.forward_with_aux, `defer_output`).

    write_weights [B, L] (training only, data.filler_weight_max): handed to the attention, whose
    memory writes token t w_t times over (infini only; config.validate checks it).

    Hook for attention layers with `feedback_rows` R > 0 (FAM): the layer also processes R rows of
    its own (its previous FAM, or `prompt` [1, R, d_model] on a reset example, chosen by
    `attention.feedback_input`) in the SAME attention call and the same feed-forward as the block;
    the R output rows go back to the attention's memory (`attention.store_feedback`).
    """
    rows = getattr(self.attention, "feedback_rows", 0)
    if not rows:
      extra = {} if write_weights is None else {"write_weights": write_weights}
      a, memory, *aux = self.attention(self.attn_norm(x), memory, positions=positions, reset=reset,
                                       **extra)
      h = x + a.astype(x.dtype)
      return (self.feed_forward(h) if apply_feed_forward else h), memory, (aux[0] if aux else None)
    if write_weights is not None:
      raise ValueError("write_weights (data.filler_weight_max > 1) needs model.attention='infini'")
    fam, residual = self.attention.feedback_input(prompt, memory, reset)
    h = jnp.concatenate([fam.astype(x.dtype), x], axis=1)   # [B, R + L, d_model]
    a, memory = self.attention(self.attn_norm(h), memory, positions=positions, reset=reset)
    h = self.feed_forward(jnp.concatenate([residual.astype(x.dtype), x], axis=1) + a.astype(x.dtype))
    return h[:, rows:], self.attention.store_feedback(memory, h[:, :rows]), None

  def propagate_prompt(self, prompt):
    """The feedback prompt through this layer alone (its rows attend only to each other)."""
    return self.feed_forward(prompt + self.attention.prompt_attention(self.attn_norm(prompt)))


class Decoder(nnx.Module):
  """Block-recurrent decoder. Memory: a tuple with one pytree per layer (then the token memory's,
  if the model has one: RMT)."""

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
    # FAM's initial memory by prompt tuning: R learned embeddings propagated up the stack (created
    # last, so the other parameters equal those of the same config without feedback rows).
    self.feedback_rows = getattr(self.layers[0].attention, "feedback_rows", 0)
    if self.feedback_rows:
      init = nnx.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)  # nnx.Embed's
      self.feedback_prompt = nnx.Param(init(rngs.params(), (self.feedback_rows, model_cfg.d_model)))
    if model_cfg.lora.rank:  # last again: the base parameters do not depend on LoRA
      add_lora(self.layers, model_cfg.lora.rank, model_cfg.lora.alpha, model_cfg.lora.targets, rngs)

  def block_len_for(self, seq_len: int) -> int:
    """`full` attention has no block recurrence: the whole sequence is one block."""
    return seq_len if self.attention_name == "full" else self.block_len

  def init_memory(self, batch: int):
    memory = tuple(layer.attention.init_memory(batch) for layer in self.layers)
    if self.token_memory is not None:
      memory += (self.token_memory.init_memory(batch),)
    return memory

  def pass_state(self, memory, take):
    """Random state passing across training steps (FAM App. B.2): each layer whose attention has
    `pass_state` hands batch element 0's state to every example's next reset where `take`."""
    layers = tuple(layer.attention.pass_state(mem, take) if hasattr(layer.attention, "pass_state")
                   else mem for layer, mem in zip(self.layers, memory))
    return layers + tuple(memory[len(self.layers):])

  def layer_prompts(self, reset):
    """FAM's prompt as each layer sees it, P_0 .. P_{n-1}, each [1, F, d_model].

    P_l does not depend on the data, and only examples starting a new document read it, so it is
    computed under lax.cond only for blocks with a reset (in training, the first block of each
    step): the other blocks skip its F rows per layer (+F / (B L) of the layer FLOPs otherwise)."""
    prompt = self.feedback_prompt[...][None].astype(self.dtype)

    def propagate():
      out = [prompt]
      for layer in self.layers[:-1]:
        out.append(layer.propagate_prompt(out[-1]))
      return jnp.stack(out)

    stacked = jax.lax.cond(jnp.any(reset), propagate,
                           lambda: jnp.zeros((len(self.layers),) + prompt.shape, prompt.dtype))
    return list(stacked)

  def __call__(self, tokens, memory, *, positions, reset):
    """tokens, positions [B, L]; reset [B] -> (logits [B, L, V] float32, new memory)."""
    logits, memory, _ = self.forward_with_aux(tokens, memory, positions=positions, reset=reset)
    return logits, memory

  def can_skip_outputs(self) -> bool:
    """Whether the top layer's feed-forward and the head can be skipped on a block whose outputs
    nobody reads: true unless the memory is read from the top layer's output (FAM's feedback rows,
    RMT's memory tokens). Every attention memory is written inside its attention call."""
    return not self.feedback_rows and self.token_memory is None

  def forward_with_aux(self, tokens, memory, *, positions, reset, write_weights=None,
                       defer_output=False):
    """As __call__, plus the layers' auxiliary losses summed: [B] float32, or None if no layer
    has one (a static property of the model). write_weights [B, L]: see DecoderLayer.

    defer_output=True (only where can_skip_outputs()): returns the top layer's residual stream
    before its feed-forward [B, L, d_model] instead of the logits; `output_logits` finishes it.
    The memory and aux are complete either way. Why: with the loss on a few answer tokens
    (passkey, S-NIAH, sorting) only the last block's logits are scored, and the caller
    (scan.block_step) runs the rest, ~1/4 of a 3-layer step's FLOPs, only where scored."""
    if defer_output and not self.can_skip_outputs():
      raise ValueError("defer_output needs a model whose memory does not read its output "
                       "(Decoder.can_skip_outputs)")
    x = self.embed(tokens).astype(self.dtype)
    layer_memory = memory[:len(self.layers)]
    if self.token_memory is not None:
      x, positions, token_mem = self.token_memory.extend(x, memory[-1], positions, reset)
    prompts = self.layer_prompts(reset) if self.feedback_rows else [None] * len(self.layers)
    new_memory, aux_losses = [], []
    for i, (layer, mem, prompt) in enumerate(zip(self.layers, layer_memory, prompts)):
      top = i == len(self.layers) - 1
      x, mem, aux = layer(x, mem, positions=positions, reset=reset, prompt=prompt,
                          write_weights=write_weights,
                          apply_feed_forward=not (defer_output and top))
      new_memory.append(mem)
      if aux is not None:
        aux_losses.append(aux.astype(jnp.float32))
    aux = sum(aux_losses) if aux_losses else None
    if defer_output:
      return x, tuple(new_memory), aux
    if self.token_memory is not None:
      x = self.final_norm(x)
      x, token_mem = self.token_memory.split(x)
      new_memory.append(token_mem)
      return self._logits(x), tuple(new_memory), aux
    return self._head(x), tuple(new_memory), aux

  def output_logits(self, h):
    """The rest of a defer_output pass: top feed-forward, final norm, head -> [B, L, V] float32."""
    return self._head(self.layers[-1].feed_forward(h))

  def _head(self, x):
    """Final norm and LM head: [B, L, d_model] -> logits [B, L, V] float32."""
    return self._logits(self.final_norm(x))

  def _logits(self, x):
    head = self.embed.attend if self.tie_embeddings else self.lm_head
    return apply_flat(head, x).astype(jnp.float32)
