"""Generation with any block-recurrent decoder: stream a prompt block by block, then decode.

The same block step as training (DESIGN.md: inference uses the same block_step):
  1. the prompt's complete blocks (all but the last, possibly partial, block) stream through
     `scan.run_blocks` in chunks of `chunk_blocks` blocks with the memory carried, so a 1M-token
     prompt costs one chunk of activations (and at most two compiled stream functions);
  2. the open block [B, L] holds the remaining r (1..L) prompt tokens; each decoding step runs the
     decoder on the open block with the memory of the last block boundary and reads the logits at
     its last filled position (the open block is padded after it; every layer is causal inside the
     block, so the padding cannot change those logits); the sampled token is appended;
  3. when the open block is full, its run's new memory is committed and a fresh block starts with
     the newly sampled token.
So the memory only ever sees complete blocks, exactly as in a teacher-forced pass, and decoded logits
equal the teacher-forced ones (tests/test_generate.py). Each step costs one block of compute: O(L)
per token instead of O(1) with an incremental KV cache, the price of one generic, exact path for
every memory mechanism. `full` attention has no recurrence: its one block spans prompt + new tokens.

Sampling: temperature 0 is greedy (deterministic); otherwise softmax(logits / temperature) restricted
to the smallest set of tokens whose probability reaches `top_p` (nucleus sampling).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from longctx.models import scan


def sample_token(logits, rng, temperature: float, top_p: float):
  """logits [B, V] float32 -> token ids [B] int32 (greedy when temperature == 0)."""
  if temperature == 0.0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits / temperature
  if top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]
    cum = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
    # Keep a token if the mass of the tokens strictly more likely than it is still < top_p.
    keep = (cum - jax.nn.softmax(sorted_logits, axis=-1)) < top_p
    threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits >= threshold, logits, -jnp.inf)
  return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


class Generator:
  """Compiled prompt streaming and decoding for one (graphdef, model config).

  gen = Generator(graphdef, model_cfg, chunk_blocks=16)
  out = gen.generate(params, prompt_tokens [B, P], max_new_tokens=8)
  out["tokens"] [B, N] int32; out["logits"] [B, N, V] float32 when return_logits=True.
  """

  def __init__(self, graphdef, model_cfg, chunk_blocks: int = 16):
    if chunk_blocks <= 0:
      raise ValueError(f"chunk_blocks={chunk_blocks} must be positive")
    self.graphdef = graphdef
    self.model_cfg = model_cfg
    self.chunk_blocks = chunk_blocks
    self._stream = jax.jit(functools.partial(scan.run_blocks, graphdef, model_cfg=model_cfg))
    self._step = jax.jit(self._open_block_step, static_argnames=("temperature", "top_p"))

  def _open_block_step(self, params, memory, block, positions, reset, last, rng, *, temperature,
                       top_p):
    """Runs the open block; returns (next token [B], its logits [B, V], memory after the block)."""
    model = nnx.merge(self.graphdef, params)
    logits, new_memory = model(block, memory, positions=positions, reset=reset)
    next_logits = jnp.take(logits, last, axis=1)
    return sample_token(next_logits, rng, temperature, top_p), next_logits, new_memory

  def _stream_prompt(self, params, memory, prefix, reset):
    """Streams complete blocks [B, n*L] through the memory; returns the memory after them."""
    b, t = prefix.shape
    block_len = self.model_cfg.block_len
    chunk = self.chunk_blocks * block_len
    start = 0
    while start < t:
      size = chunk if t - start >= chunk else block_len  # at most two compiled shapes
      piece = jnp.asarray(prefix[:, start:start + size])
      batch = {"inputs": piece, "targets": piece, "weights": jnp.zeros(piece.shape, jnp.float32),
               "positions": scan.default_positions(b, size, start),
               "reset": jnp.full((b,), reset and start == 0)}
      memory, _ = self._stream(params, memory, batch)
      start += size
    return memory

  def generate(self, params, prompt, max_new_tokens: int, *, temperature: float = 0.0,
               top_p: float = 1.0, rng=None, return_logits: bool = False):
    prompt = np.asarray(prompt, dtype=np.int32)
    if prompt.ndim != 2 or prompt.shape[1] < 1:
      raise ValueError(f"prompt must be [batch, length >= 1] token ids, got shape {prompt.shape}")
    if max_new_tokens < 1:
      raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1")
    if temperature < 0 or not 0.0 < top_p <= 1.0:
      raise ValueError(f"temperature={temperature} must be >= 0 and top_p={top_p} in (0, 1]")
    if temperature > 0 and rng is None:
      raise ValueError("sampling with temperature > 0 needs an explicit rng (jax.random.key)")
    rng = jax.random.key(0) if rng is None else rng
    b, p = prompt.shape
    full = self.model_cfg.attention == "full"
    block_len = p + max_new_tokens if full else self.model_cfg.block_len
    # Complete blocks before the open one; the open block keeps 1..L prompt tokens so the logits of
    # the prompt's last token come from it.
    n_prefix = 0 if full else ((p - 1) // block_len) * block_len
    memory = nnx.merge(self.graphdef, params).init_memory(b)
    memory = self._stream_prompt(params, memory, prompt[:, :n_prefix], reset=True)

    block = np.zeros((b, block_len), np.int32)
    filled = p - n_prefix
    block[:, :filled] = prompt[:, n_prefix:]
    block_start = n_prefix
    tokens, logits = [], []
    for _ in range(max_new_tokens):
      rng, key = jax.random.split(rng)
      positions = scan.default_positions(b, block_len, block_start)
      token, step_logits, new_memory = self._step(
          params, memory, jnp.asarray(block), positions, jnp.full((b,), block_start == 0),
          filled - 1, key, temperature=float(temperature), top_p=float(top_p))
      token = np.asarray(token)
      tokens.append(token)
      if return_logits:
        logits.append(np.asarray(step_logits))
      if filled == block_len:   # the open block is complete: commit it, open the next one
        memory, block_start, filled = new_memory, block_start + block_len, 0
        block = np.zeros_like(block)
      block[:, filled] = token
      filled += 1
    out = {"tokens": np.stack(tokens, axis=1)}
    if return_logits:
      out["logits"] = np.stack(logits, axis=1)
    return out
