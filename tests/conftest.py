"""Shared fixtures: tiny model configs so every test runs in seconds on a CPU."""
import os
import sys

import pytest

# Plain `pytest` (not `python -m pytest`) from a checkout where longctx is not pip-installed.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

# The tests compile many tiny XLA programs, and on a CPU compiling dominates their run time. These
# two flags cut it about 4x (LLVM optimisation level 0; XLA's older loop emitters for fusions
# instead of the MLIR fusion emitters); they change code generation, not the operations computed.
# Set before jax is imported; a flag the user already set in XLA_FLAGS is left alone.
_FAST_COMPILE_FLAGS = {"xla_backend_optimization_level": "0", "xla_cpu_use_fusion_emitters": "false"}
for _name, _value in _FAST_COMPILE_FLAGS.items():
  if _name not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --{_name}={_value}".strip()

from longctx import checkpoint as ckpt_lib
from longctx.config import model_config, validate_model


def stop_after(monkeypatch, n: int):
  """Makes the trainer's SIGTERM check answer yes from its n-th call on: a run killed after n
  steps (it saves step n and returns)."""
  calls = {"n": 0}

  def should_stop():
    calls["n"] += 1
    return calls["n"] >= n
  monkeypatch.setattr(ckpt_lib, "should_stop", should_stop)


def tiny_model_config(**overrides):
  """A model small enough for float64 numpy references and per-token loops.

  d_model 16, 2 heads of D=8, 1 layer, vocab 32, block L=4; no remat (tests that need it say so).
  Nested fields (bswa, xl, infini, fam, lora, ...) take dicts that update the defaults.
  """
  nested = {k: overrides.pop(k) for k in ("bswa", "xl", "infini", "fam", "lora", "infinity_former",
                                          "titans", "memorizing", "compressive", "rmt")
            if k in overrides}
  base = dict(vocab_size=32, d_model=16, num_heads=2, num_layers=1, mlp_dim=32, block_len=4,
              remat_policy="none")
  base.update(overrides)
  cfg = model_config(**base)
  for key, values in nested.items():
    cfg[key].update(values)
  validate_model(cfg)
  return cfg


@pytest.fixture
def tiny_cfg():
  """Factory: tiny_cfg(attention='bswa', bswa=dict(mem_blocks=2)) -> a validated model config."""
  return tiny_model_config
