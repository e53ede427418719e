"""The block-scan driver: one block step, compiled once, run over the sequence with jax.lax.scan.

Data path: batch [B, T] -> blocks [T/L, B, L] -> lax.scan(block_step, memory0, blocks) -> per-token
losses [B, T]. The scan body returns per-token loss and correctness, never [T, V] logits, so a
1M-token evaluation costs one block of activations. jax.checkpoint wraps the block step (policy
from config) so the backward pass keeps one block of activations plus the carried memory per block.
"""
import functools

import jax
import jax.numpy as jnp
from flax import nnx

_POLICIES = {
    "nothing_saveable": jax.checkpoint_policies.nothing_saveable,
    "dots_saveable": jax.checkpoint_policies.dots_saveable,
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "everything_saveable": jax.checkpoint_policies.everything_saveable,
}


def default_positions(batch: int, seq_len: int, offset=0) -> jax.Array:
  return jnp.broadcast_to(jnp.arange(seq_len, dtype=jnp.int32) + offset, (batch, seq_len))


def complete_batch(batch: dict) -> dict:
  """Fills optional fields: weights (ones), positions (0..T-1), reset (all True: fresh memory)."""
  b, t = batch["inputs"].shape
  out = dict(batch)
  out.setdefault("weights", jnp.ones((b, t), jnp.float32))
  out.setdefault("positions", default_positions(b, t))
  out.setdefault("reset", jnp.ones((b,), bool))
  return out


def token_outputs(logits, targets, weights):
  """Per-token weighted cross-entropy and argmax correctness, both [B, L] float32."""
  logp = jax.nn.log_softmax(logits, axis=-1)
  nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return {"loss": nll * weights, "correct": correct}


def block_step(model, memory, block, skip_unscored=False):
  """One block through the decoder. block: inputs/targets/weights/positions [B, L], reset [B].
  Outputs 'loss', 'correct' [B, L], and 'aux_loss' [B] (summed over layers) for a model whose
  layers return auxiliary losses (decoder.py).

  skip_unscored (model.skip_unscored_outputs): a block whose weights are all zero skips the top
  layer's feed-forward, the head and the loss (lax.cond; Decoder.forward_with_aux defer_output);
  its loss is 0 as before, and its 'correct' is 0, so 'correct' is defined only where
  weights > 0 (what every caller reads)."""
  defer = skip_unscored and model.can_skip_outputs()
  out, memory, aux = model.forward_with_aux(block["inputs"], memory,
                                            positions=block["positions"], reset=block["reset"],
                                            write_weights=block.get("write_weights"),
                                            defer_output=defer)
  scored = lambda logits: token_outputs(logits, block["targets"], block["weights"])
  if defer:
    unscored = {k: jnp.zeros(block["weights"].shape, jnp.float32) for k in ("loss", "correct")}
    outs = jax.lax.cond(jnp.any(block["weights"] != 0),
                        lambda h: scored(model.output_logits(h)), lambda h: unscored, out)
  else:
    outs = scored(out)
  if aux is not None:
    outs["aux_loss"] = aux
  return memory, outs


def _to_blocks(x, block_len):
  """[B, T, ...] -> [T/L, B, L, ...]."""
  b, t = x.shape[:2]
  return jnp.swapaxes(x.reshape((b, t // block_len, block_len) + x.shape[2:]), 0, 1)


def _from_blocks(x):
  """[N, B, L] -> [B, N*L]."""
  n, b, l = x.shape
  return jnp.swapaxes(x, 0, 1).reshape(b, n * l)


def run_blocks(graphdef, params, memory, batch, model_cfg):
  """Runs the decoder over batch['inputs'] [B, T] block by block.

  Returns (final memory, {'loss': [B, T], 'correct': [B, T]}, plus 'aux_loss' [B, T/L] when the
  model has auxiliary losses). reset[b] clears example b's memory
  before the first block; later blocks never reset. Gradients flow through the memory carry unless
  model_cfg.bptt_blocks = k > 0, which stops them at every k-th block boundary.
  """
  batch = complete_batch(batch)
  b, t = batch["inputs"].shape
  block_len = t if model_cfg.attention == "full" else model_cfg.block_len
  if t % block_len:
    raise ValueError(f"sequence length {t} is not a multiple of model.block_len={block_len}")
  num_blocks = t // block_len

  # write_weights [B, T] (optional): the memory-write multiplicity of each token (training only,
  # data.filler_weight_max; layers/infini.py).
  per_token = {k: _to_blocks(batch[k], block_len)
               for k in ("inputs", "targets", "weights", "positions", "write_weights") if k in batch}
  resets = jnp.zeros((num_blocks, b), bool).at[0].set(batch["reset"])
  xs = dict(per_token, reset=resets, index=jnp.arange(num_blocks))

  def step(params, memory, block):
    model = nnx.merge(graphdef, params)
    block = dict(block)
    index = block.pop("index")
    if model_cfg.bptt_blocks:
      cut = (index > 0) & (index % model_cfg.bptt_blocks == 0)
      memory = jax.tree.map(lambda m: jnp.where(cut, jax.lax.stop_gradient(m), m), memory)
    return block_step(model, memory, block, model_cfg.skip_unscored_outputs)

  if model_cfg.remat_policy != "none":
    step = jax.checkpoint(step, policy=_POLICIES[model_cfg.remat_policy])
  body = lambda mem, blk: step(params, mem, blk)
  group = scan_group_size(num_blocks, model_cfg.scan_group_blocks)
  if group <= 1:
    memory, outs = jax.lax.scan(body, memory, xs, unroll=model_cfg.scan_unroll)
  else:
    memory, outs = _grouped_scan(body, memory, xs, num_blocks, group, model_cfg.scan_unroll)
  return memory, {k: (jnp.swapaxes(v, 0, 1) if k == "aux_loss" else _from_blocks(v))
                  for k, v in outs.items()}


def scan_group_size(num_blocks: int, setting: int) -> int:
  """Blocks per checkpointed group: 0 = no grouping; -1 = the largest divisor of num_blocks that is
  <= sqrt(num_blocks); G > 0 = G, which must divide num_blocks."""
  if setting == 0:
    return 1
  if setting < 0:
    return max(g for g in range(1, int(num_blocks ** 0.5) + 1) if num_blocks % g == 0)
  if num_blocks % setting:
    raise ValueError(f"model.scan_group_blocks={setting} does not divide the {num_blocks} blocks "
                     "of this sequence")
  return setting


def _grouped_scan(body, memory, xs, num_blocks, group, unroll):
  """Two-level (sqrt) checkpointing: an outer scan over N/G groups whose body (an inner scan over G
  blocks) is checkpointed. The backward pass then keeps N/G + G memory carries instead of N, for
  one extra forward pass. Why: with BPTT the scan must keep every block's input carry, so peak
  memory grows as (T/L) x |memory| (a BSWA cache is 2 m L d floats per layer and example)."""
  grouped = jax.tree.map(lambda x: x.reshape((num_blocks // group, group) + x.shape[1:]), xs)

  @functools.partial(jax.checkpoint, policy=jax.checkpoint_policies.nothing_saveable)
  def group_body(mem, blocks):
    return jax.lax.scan(body, mem, blocks, unroll=unroll)
  memory, outs = jax.lax.scan(group_body, memory, grouped)
  return memory, jax.tree.map(lambda x: x.reshape((num_blocks,) + x.shape[2:]), outs)


def mean_loss(params, graphdef, memory, batch, model_cfg):
  """Weighted mean token loss, for jax.grad; aux = (final memory, per-token outputs).

  Layers' auxiliary losses (already weighted by their layer, summed over layers) are added as
  their mean over examples and blocks."""
  memory, outs = run_blocks(graphdef, params, memory, batch, model_cfg)
  weights = complete_batch(batch)["weights"]
  loss = jnp.sum(outs["loss"]) / jnp.maximum(jnp.sum(weights), 1.0)
  if "aux_loss" in outs:
    loss = loss + jnp.mean(outs["aux_loss"])
  return loss, (memory, outs)
