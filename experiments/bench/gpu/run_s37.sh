#!/bin/bash
# Stop 37 on one NVIDIA H200: why FAM costs 1.129x BSWA's step time on the GPU (issue 4) and MAC's
# throughput against infini with larger inner chunks (issue 5 bar 2). Bounded stages; JSONs and a
# log into $OUT (default bench_out/gpu_s37).
#   OUT=bench_out/gpu_s37 bash experiments/bench/gpu/run_s37.sh
OUT=${OUT:-bench_out/gpu_s37}
source "$(dirname "$0")/common.sh"
# Issue 4: the attention and the feed-forward alone at BSWA's and FAM's shapes (block 1024, m 3).
echo "=== fam_attention_shapes $(date -u +%T)" >>"$LOG"
PYTHONPATH=.:${PYTHONPATH:-} timeout 100 python3 experiments/fam/attention_shapes.py --out "$OUT/fam_attention_shapes.jsonl" >>"$LOG" 2>&1
echo "=== fam_attention_shapes rc=$? $(date -u +%T)" >>"$LOG"
# Issue 4: the whole step with L_F 128 (2x the rows FAM adds) against BSWA, in one run.
stage 130 fam128_vs_bswa_gpu8k --config=configs/bench/decoder.py:gpu,fam_len=128,mem_blocks=3 --attention=fam,bswa --lengths=8K --repeats=5 --paired_rounds=1
# Issue 5 bar 2: MAC with inner chunks of 64 and 256 (stop 36: 16) against infini, gpu shape.
stage 200 mac64_vs_infini_gpu8k --config=configs/bench/decoder.py:gpu,variant=mac,titans_chunk=64 --attention=titans,infini --lengths=8K --repeats=3 --paired_rounds=1
stage 130 mac256_gpu8k --config=configs/bench/decoder.py:gpu,variant=mac,titans_chunk=256 --attention=titans --lengths=8K --repeats=3 --paired_rounds=1
date -u >>"$LOG"
