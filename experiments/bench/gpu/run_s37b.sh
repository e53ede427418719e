#!/bin/bash
# Stop 37, second GPU call: the attention-shape probe (PYTHONPATH fixed), FAM with its prompt
# propagated in EVERY block instead of under lax.cond (a probe: is the per-block conditional, whose
# predicate a GPU reads back on the host, FAM's fixed ~7% on the GPU?), and MAC with chunks of 256
# (its compile ran past 86 s in the first call).
#   OUT=bench_out/gpu_s37b bash experiments/bench/gpu/run_s37b.sh
OUT=${OUT:-bench_out/gpu_s37b}
source "$(dirname "$0")/common.sh"
echo "=== fam_attention_shapes $(date -u +%T)" >>"$LOG"
PYTHONPATH=.:${PYTHONPATH:-} timeout 100 python3 experiments/fam/attention_shapes.py --out "$OUT/fam_attention_shapes.jsonl" >>"$LOG" 2>&1
echo "=== fam_attention_shapes rc=$? $(date -u +%T)" >>"$LOG"
# The probe edits this machine's copy only.
sed -i 's/stacked = jax.lax.cond(jnp.any(reset), propagate,/stacked = propagate() if True else jax.lax.cond(jnp.any(reset), propagate,/' longctx/models/decoder.py
grep -n "stacked = " longctx/models/decoder.py >>"$LOG"
stage 130 fam64_nocond_vs_bswa_gpu8k --config=configs/bench/decoder.py:gpu,fam_len=64,mem_blocks=3 --attention=fam,bswa --lengths=8K --repeats=5 --paired_rounds=1
git checkout longctx/models/decoder.py
stage 240 mac256_gpu8k --config=configs/bench/decoder.py:gpu,variant=mac,titans_chunk=256 --attention=titans --lengths=8K --repeats=3 --paired_rounds=1
date -u >>"$LOG"
