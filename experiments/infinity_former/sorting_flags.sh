# Shared by run_sorting_bar.sh and swap_sampling.sh (sourced, not run): the sorting bar's flags on top
# of configs/sorting/<arch>.py:cpu (README.md here, attempt 4). Needs SEED; SAMPLES defaults to 1024.
# Compile-time flags (as tests/conftest.py): on a small CPU, compiling dominates short runs.
export XLA_FLAGS="--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
COMMON="--config.train.lr=3e-3 --config.train.warmup_steps=50 --config.train.log_every=50
  --config.train.time_limit_minutes=0 --config.data.batch_size=16
  --config.train.seed=$SEED --config.data.seed=$SEED --config.model.block_len=64
  --config.model.infinity_former.num_basis=64 --config.model.infinity_former.num_samples=64
  --config.model.infinity_former.num_bins=32 --config.model.infinity_former.basis_widths=(0.02,0.05)
  --config.model.compressive.compressed_len=64 --config.checkpoint.every_steps=100
  --config.evals.sorting.samples=${SAMPLES:-1024} --config.evals.sorting.batch_size=64"
