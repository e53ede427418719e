#!/bin/bash
# The GPU figures of scripts/bench.py on one accelerator (stop 36: one NVIDIA H200, lent for
# 15 minutes). Every stage is a separate bench run bounded by `timeout`; a failing stage does not
# stop the next. Writes the bench JSONs and a log into $OUT (default bench_out/gpu).
#   OUT=bench_out/gpu bash experiments/bench/gpu/run_h200.sh
# On a machine whose image lacks ml_collections / tensorboardX, put their wheels in .whl/ first
# (common.sh).
OUT=${OUT:-bench_out/gpu}
source "$(dirname "$0")/common.sh"
python3 -c "import jax, flax, optax, ml_collections; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())" >>"$LOG" 2>&1
# Issue 5 bar 2: MAC vs Infini at the same width, depth and block (gpu shape, then the CPU shape).
stage 170 mac_vs_infini_gpu8k --config=configs/bench/decoder.py:gpu,variant=mac --attention=titans,infini --lengths=8K --repeats=3 --paired_rounds=2
# Issue 4 bar 2: FAM vs BSWA at the paper's shape ratios (block 1024, L_F 64, 3 memory blocks).
stage 130 fam_vs_bswa_gpu8k --config=configs/bench/decoder.py:gpu,fam_len=64,mem_blocks=3 --attention=fam,bswa --lengths=8K --repeats=5 --paired_rounds=2
# Flat cost per token on the accelerator: 8K vs 64K.
stage 150 infini_bswa_gpu_8k_64k --config=configs/bench/decoder.py:gpu --attention=infini,bswa --lengths=8K,64K --repeats=3 --paired_rounds=1
stage 90 mac_vs_infini_cpushape1k --config=configs/bench/decoder.py:cpu,variant=mac --attention=titans,infini --lengths=1K --batch=4 --repeats=3 --paired_rounds=2 --matmul_size=8192
date -u >>"$LOG"
