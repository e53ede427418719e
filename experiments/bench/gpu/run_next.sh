#!/bin/bash
# Planned for the next GPU session (written in stop 37, not yet run): MAC's chunk loop with its
# iterations unrolled (model.titans.chunk_unroll), which stop 37 found launch-bound on an H200
# (0.64-0.93 s of host CPU in a 0.95-1.15 s step), and one chunk per segment (b = 1,024, no loop).
# About 7 minutes on an H200 (MAC compiles in 1.5-2 minutes per child).
#   OUT=bench_out/gpu_next bash experiments/bench/gpu/run_next.sh
OUT=${OUT:-bench_out/gpu_next}
source "$(dirname "$0")/common.sh"
G=configs/bench/decoder.py:gpu,variant=mac
stage 200 mac64u16_vs_infini_gpu8k --config=$G,titans_chunk=64,titans_chunk_unroll=16 --attention=titans,infini --lengths=8K --repeats=3 --paired_rounds=1
stage 200 mac256u4_gpu8k --config=$G,titans_chunk=256,titans_chunk_unroll=4 --attention=titans --lengths=8K --repeats=3 --paired_rounds=1
stage 200 mac1024_gpu8k --config=$G,titans_chunk=1024 --attention=titans --lengths=8K --repeats=3 --paired_rounds=1
date -u >>"$LOG"
