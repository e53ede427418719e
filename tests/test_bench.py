"""scripts/bench.py end to end at the smoke preset (one short length, one repeat), plus its FLOP formula."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from longctx.flops import model_flops_per_token

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRIPT = os.path.join(_REPO, "scripts", "bench.py")


def _load_bench():
  spec = importlib.util.spec_from_file_location("bench_script", _SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_model_flops_formula():
  bench = _load_bench()
  cfg = bench.load_config("configs/bench/decoder.py:cpu")
  model = cfg.model.copy_and_resolve_references()
  d, f, v, layers = 256, 1024, 256, 4
  n_mm = layers * (4 * d * d + 3 * d * f) + d * v
  model.attention = "bswa"
  flops = model_flops_per_token(model, 8192)
  assert flops["matmul_params"] == n_mm
  assert flops["train"] == 6 * n_mm + 3 * 4 * (256 + 128) * d * layers
  model.attention = "infini"
  flops = model_flops_per_token(model, 8192)
  assert flops["train"] == 6 * n_mm + 3 * 4 * 128 * d * layers + 3 * 2 * 2 * 64 * d * layers
  model.attention = "full"
  assert model_flops_per_token(model, 8192)["keys_seen"] == 4096
  model.attention = "fam"  # F = 64 rows, m = 1: block queries see 256 + 64 + 128 keys
  model.fam.update(fam_len=64, mem_blocks=1)
  flops = model_flops_per_token(model, 8192)
  assert flops["keys_seen"] == 256 + 64 + 128 + 64 * (64 + 256) / 256
  assert flops["mem_fwd"] == 2 * layers * (4 * d * d + 3 * d * f) * 64 / 256


def test_bench_smoke_writes_json(tmp_path):
  out = tmp_path / "bench.json"
  cmd = [sys.executable, _SCRIPT, "--config=configs/bench/decoder.py:smoke", "--attention=infini",
         "--lengths=256", "--repeats=1", "--matmul_size=512", f"--out={out}"]
  proc = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert "### infini" in proc.stdout and "| 256 |" in proc.stdout

  data = json.loads(out.read_text())
  assert data["meta"]["cpu_count"] == os.cpu_count()
  (r,) = data["results"]
  assert r["status"] == "ok", r
  assert (r["attention"], r["length"], r["batch"]) == ("infini", 256, 1)
  for key in ("compile_s", "compile_cpu_s", "train_tokens_per_s", "fwd_tokens_per_s",
              "rss_peak_bytes", "matmul_gflops", "train_model_gflops",
              "fraction_of_matmul_peak", "loadavg_before", "loadavg_after"):
    assert isinstance(r[key], (int, float, list)), key
  assert r["train_tokens_per_s"] > 0 and r["fwd_tokens_per_s"] > 0 and r["matmul_gflops"] > 0
  assert len(r["train_step_times_s"]) == 1
  # Paired rounds (default 5): each round's model FLOP rate over the matmul timed right after it.
  assert len(r["paired_train_step_times_s"]) == len(r["paired_matmul_gflops"]) == 5
  expect = [r["model_flops_per_token"]["train"] * 256 / t / 1e9 / m
            for t, m in zip(r["paired_train_step_times_s"], r["paired_matmul_gflops"])]
  assert r["paired_fractions"] == pytest.approx(expect)
  assert r["fraction_of_matmul_peak_paired"] == pytest.approx(sorted(expect)[2])
  assert "% paired" in proc.stdout
  for key in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes"):
    assert r["train_memory_analysis"][key] >= 0
  assert r["xla_train_bytes"] > 0
  assert r["ratios"]["train_time_per_token"] == pytest.approx(1.0)
  assert r["rss_peak_bytes"] > 50 * 2 ** 20  # a JAX process, in bytes (ru_maxrss is KiB on Linux)
  # The CPU client keeps no allocator statistics: no device peak, and the host budget guards.
  assert data["meta"]["jax_platform"] == "cpu" and r["backend"] == "cpu"
  assert r["device_peak_bytes"] is None and "device_bytes_limit" not in r


def test_gpu_preset_resolves_for_the_gpu_runs():
  """The shapes experiments/bench/gpu/run_h200.sh measures validate (block 1024, L_F 64, m 3)."""
  sys.path.insert(0, os.path.dirname(_SCRIPT))
  import bench  # pylint: disable=import-outside-toplevel
  spec = "configs/bench/decoder.py:gpu,variant=mac,fam_len=64,mem_blocks=3"
  flags = bench.parse_flags([f"--config={spec}", "--attention=fam,bswa,titans,infini",
                             "--platform=cuda"])
  cfg = bench.load_config(spec)
  opts = bench.resolve(flags, cfg)
  assert opts["lengths"] == [8192, 16384, 32768, 65536] and opts["batch"] == 4
  assert opts["matmul_size"] == 8192 and flags.platform == "cuda"
  assert (cfg.model.block_len, cfg.model.d_model, cfg.model.fam.fam_len,
          cfg.model.fam.mem_blocks) == (1024, 1024, 64, 3)
  with pytest.raises(SystemExit):  # argparse: not one of cpu, cuda
    bench.parse_flags(["--platform=tpu"])
