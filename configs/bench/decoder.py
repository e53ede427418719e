"""Benchmark config: the decoder's scaling with sequence length (scripts/bench.py).

Run:
  python scripts/bench.py --config=configs/bench/decoder.py:cpu
  python scripts/bench.py --config=configs/bench/decoder.py:cpu --attention=infini,bswa,xl,full
  python scripts/bench.py --config=configs/bench/decoder.py:smoke --lengths=256 --repeats=1  # quick

Argument (big_vision style, longctx.config.parse_arg): a bare word picks the preset, key=value
pairs override, e.g. `configs/bench/decoder.py:cpu,attention=bswa,remat_policy=dots_saveable`;
`scan_group_blocks=-1` turns on two-level (sqrt) checkpointing of the block scan, which keeps the
saved memory carries at ~2 sqrt(T/L) instead of T/L (the BSWA/XL cache is 2 m L d floats per layer).
`mem_blocks` sets bswa, xl and fam alike; `fam_len` is FAM's L_F (FAM vs BSWA cost parity:
`--attention=fam,bswa`).
`variant=mac|mag|mal|lmm` picks the Titans architecture for `--attention=titans`, `titans_chunk=b`
its inner mini-batch (chunk) size, `titans_remat_chunks=False` stores each chunk's
intermediates within a (checkpointed) block instead of recomputing them, `titans_chunk_unroll=k`
runs k chunks per iteration of the chunk loop.
  cpu    the bench shape = longctx.config.model_config defaults: 4 layers, d_model 256, 4 heads,
         SwiGLU 1024, block 256, byte vocabulary 256; lengths 4K..64K.
  smoke  a tiny model (d_model 64, 2 layers, 4 heads, SwiGLU 256, block 64) and short lengths,
         for tests and for developing the script.
  gpu    for one accelerator (`scripts/bench.py --platform=cuda`): 8 layers, d_model 1024,
         8 heads, SwiGLU 4096, block 1024 (the block of FAM's and Infini's papers), lengths 8K..64K,
         batch 4, an 8192^2 matmul for the peak.
`bench.*` holds the script's defaults; its command-line flags override them.
"""
import ml_collections

from longctx import config as config_lib

_PRESETS = {
    "cpu": dict(model={}, lengths=(4096, 8192, 16384, 32768, 65536), seq_len=4096),
    "smoke": dict(model=dict(d_model=64, num_layers=2, num_heads=4, mlp_dim=256, block_len=64),
                  lengths=(256, 512), seq_len=256),
    "gpu": dict(model=dict(d_model=1024, num_layers=8, num_heads=8, mlp_dim=4096, block_len=1024),
                lengths=(8192, 16384, 32768, 65536), seq_len=8192,
                bench=dict(batch=4, matmul_size=8192)),
}


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, preset="cpu", attention="infini", remat_policy="nothing_saveable",
                             mem_blocks=1, update_rule="linear", dtype="float32",
                             scan_group_blocks=0, fam_len=64, variant="mac", titans_chunk=16,
                             titans_remat_chunks=True, titans_chunk_unroll=1)
  if arg.preset not in _PRESETS:
    raise ValueError(f"config argument preset={arg.preset!r} is not one of {sorted(_PRESETS)}")
  preset = _PRESETS[arg.preset]

  cfg = config_lib.base_config()
  cfg.model.update(preset["model"])
  cfg.model.attention = arg.attention
  cfg.model.remat_policy = arg.remat_policy
  cfg.model.dtype = arg.dtype
  cfg.model.scan_group_blocks = arg.scan_group_blocks
  cfg.model.bswa.mem_blocks = arg.mem_blocks
  cfg.model.xl.mem_blocks = arg.mem_blocks
  cfg.model.fam.mem_blocks = arg.mem_blocks   # FAM vs BSWA at the same memory blocks (cost parity)
  cfg.model.fam.fam_len = arg.fam_len
  cfg.model.infini.update_rule = arg.update_rule
  cfg.model.titans.variant = arg.variant   # model.attention=titans: lmm | mac | mag | mal
  cfg.model.titans.chunk_size = arg.titans_chunk
  cfg.model.titans.remat_chunks = arg.titans_remat_chunks
  cfg.model.titans.chunk_unroll = arg.titans_chunk_unroll
  cfg.data.seq_len = preset["seq_len"]

  cfg.bench = ml_collections.ConfigDict(dict(
      preset=arg.preset,
      attentions=("infini", "bswa", "xl"),  # --attention
      lengths=preset["lengths"],           # --lengths
      batch=1,                              # --batch
      repeats=3,                            # --repeats: timed steps after one warm-up step
      full_max_len=16384,                   # `full` is skipped above this length (quadratic)
      matmul_size=2048,                     # the float32 matmul peak: [n, n] @ [n, n]
      matmul_repeats=7,
      paired_rounds=5,                      # --paired_rounds: (train step, matmul) pairs
  ))
  cfg.bench.update(preset.get("bench", {}))
  return config_lib.finalize(cfg)
