"""Analytic model FLOPs per token of a decoder config (longctx.config.model_config), used by
scripts/bench.py for its MFU-style figures and by anyone comparing architectures' costs.

Model FLOPs (no recompute: jax.checkpoint re-runs the forward pass inside the backward pass, which
costs real time but is NOT counted; the figure is an MFU-style "useful" FLOP rate). Per token:
  N_mm       = num_layers * (4 d^2 + 3 d f) + d V        matmul parameters touched (q, k, v, out;
                                                          SwiGLU gate, up, down; LM head; the
                                                          embedding gather is not a matmul)
  keys_seen  = T / 2                                      full (causal, average over positions)
             = mem_blocks * L + L / 2                     bswa, xl (cache + causal block)
             = L / 2                                      infini (causal block)
  attn_fwd   = num_layers * 4 * keys_seen * d             q k^T (2 keys d) + probs v (2 keys d)
  mem_fwd    = num_layers * 2 * 2 * D * d                 infini only: retrieval sigma(q) M and
                                                          update sigma(k)^T v, 2 D d each (D =
                                                          head dim; 'linear_delta' adds a third)
  memorizing: keys_seen as xl; mem_fwd = n_knn_layers * 2 * (capacity + top_k) * d  (scores against
             every memory slot, then the top_k values)
  compressive: keys_seen = xl's + compressed_len; mem_fwd = layers * (4 d^2 + 4 (L + L/c) d)
             (two [c d, d] convolutions per evicted token; the two reconstruction attentions)
  rmt:       each block runs L + 2m rows: keys_seen = (L + 2m)^2 / (2 L) per real token and
             mem_fwd = 2 (2m / L) (N_mm - d V) (the memory rows' matmuls, no LM head)
  fam:       the F FAM rows through every layer (mem_fwd = 2 layers (4 d^2 + 3 d f) F / L) and
             their keys (see the code); titans: the memory's projections and the inner gradient
             step per head (see the code). No formula yet for infinity_former (ValueError).
  train      = 6 N_mm + 3 attn_fwd + 3 mem_fwd            (backward = 2 x forward)
             = 6 N_mm + 3*4*keys_seen*d*layers + 3*2*2*D*d*layers
  forward    = 2 N_mm + attn_fwd + mem_fwd
with d = d_model, f = mlp_dim, V = vocab_size, L = block_len, D = d_model / num_heads.
"""


def model_flops_per_token(model_cfg, seq_len: int) -> dict:
  d, f, v = model_cfg.d_model, model_cfg.mlp_dim, model_cfg.vocab_size
  layers, heads = model_cfg.num_layers, model_cfg.num_heads
  head_dim = d // heads
  block = seq_len if model_cfg.attention == "full" else model_cfg.block_len
  n_mm = layers * (4 * d * d + 3 * d * f) + d * v
  name = model_cfg.attention
  if name == "full":
    keys_seen = seq_len / 2
  elif name == "bswa":
    keys_seen = model_cfg.bswa.mem_blocks * block + block / 2
  elif name == "xl":
    keys_seen = model_cfg.xl.mem_blocks * block + block / 2
  elif name == "infini":
    keys_seen = block / 2
  elif name == "fam":
    # Block queries: m blocks + the F FAM rows + half the block; the F FAM queries of a block see
    # F + L keys each, spread over the block's L tokens.
    fam_len = model_cfg.fam.fam_len
    keys_seen = (model_cfg.fam.mem_blocks * block + fam_len + block / 2
                 + fam_len * (fam_len + block) / block)
  elif name == "titans":
    t = model_cfg.titans
    keys_seen = {"lmm": 0.0, "mac": t.persistent_tokens + block,
                 "mag": t.persistent_tokens + t.window_blocks * block + block / 2,
                 "mal": t.persistent_tokens + t.window_blocks * block + block / 2}[t.variant]
  elif name == "memorizing":
    keys_seen = model_cfg.xl.mem_blocks * block + block / 2
  elif name == "compressive":
    keys_seen = model_cfg.xl.mem_blocks * block + model_cfg.compressive.compressed_len + block / 2
  elif name == "rmt":
    keys_seen = (block + 2 * model_cfg.rmt.num_tokens) ** 2 / (2 * block)
  else:
    raise ValueError(f"model.attention={name!r}: no FLOP formula for it in longctx/flops.py")
  attn_fwd = layers * 4 * keys_seen * d
  mem_fwd = 0.0
  if name == "infini":
    passes = 3 if model_cfg.infini.update_rule == "linear_delta" else 2
    mem_fwd = layers * passes * 2 * head_dim * d
  if name == "fam":  # the F FAM rows through every layer's projections and MLP, per block token
    # (the prompt's pass up the stack, F rows per block unbatched, is not counted)
    mem_fwd = 2 * layers * (4 * d * d + 3 * d * f) * model_cfg.fam.fam_len / block
  if name == "titans":
    t = model_cfg.titans
    # Memory projections: q, k, v, output gate, output (+ MAC's read-again query and the
    # retrieved tokens' keys/values, + the (x) gate's projection); `lmm` has no attention.
    extra = {"lmm": 5 - 4, "mac": 5 + 1 + 2 + 1, "mag": 5 + 1, "mal": 5}[t.variant]
    n_mm += layers * extra * d * d
    hidden = head_dim * t.memory_expansion
    dims = [head_dim] + [hidden] * (t.memory_depth - 1) + [head_dim]
    weights = sum(i * o for i, o in zip(dims[:-1], dims[1:]))   # |W| per head
    # Per token and head: gradient (~3 forward passes of 2|W|), two scans (~2 x 2|W| each),
    # the read (2|W|): ~14 |W|; MAC also reads once more for retrieval.
    reads = 2 if t.variant == "mac" else 1
    mem_fwd = layers * model_cfg.num_heads * weights * (12 + 2 * reads)
  elif name == "memorizing":
    mc = model_cfg.memorizing
    knn_layers = len(mc.layers) or layers
    mem_fwd = knn_layers * 2 * (mc.capacity + mc.top_k) * d
  elif name == "compressive":
    rate = model_cfg.compressive.rate
    mem_fwd = layers * (4 * d * d + 4 * (block + block / rate) * d)
  elif name == "rmt":
    mem_fwd = 2 * (2 * model_cfg.rmt.num_tokens / block) * (n_mm - d * v)
  return dict(matmul_params=n_mm, keys_seen=keys_seen, attn_fwd=attn_fwd, mem_fwd=mem_fwd,
              forward=2 * n_mm + attn_fwd + mem_fwd, train=6 * n_mm + 3 * attn_fwd + 3 * mem_fwd)
