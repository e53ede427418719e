"""scripts/memory_table.py: the Infini Table 1 formulas on hand-computed configs, and the paper's
Table 2 figures at the paper's settings."""
import importlib.util
import os

import pytest

from longctx.config import model_config

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load():
  spec = importlib.util.spec_from_file_location(
      "memory_table", os.path.join(_ROOT, "scripts", "memory_table.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# d_model 64, 4 heads (D = 16), 3 layers, block 32.
_BASE = dict(d_model=64, num_heads=4, num_layers=3, block_len=32)


@pytest.mark.parametrize("overrides,expected", [
    (dict(attention="infini"), 16 * 17 * 4 * 3),                              # D (D + 1) H l
    (dict(attention="xl", xl=dict(mem_blocks=2)), 32 * 4 * 64 * 3),           # 2D H N l, N = 64
    (dict(attention="bswa", bswa=dict(mem_blocks=0)), 0),
    (dict(attention="memorizing", xl=dict(mem_blocks=1),
          memorizing=dict(capacity=256, layers=(1,))), 32 * 4 * (32 * 3 + 256)),
    (dict(attention="memorizing", xl=dict(mem_blocks=1),
          memorizing=dict(capacity=256, layers=())), 32 * 4 * (32 * 3 + 256 * 3)),  # every layer
    (dict(attention="compressive", xl=dict(mem_blocks=1),
          compressive=dict(compressed_len=48, rate=2)), 32 * 4 * (32 + 48) * 3),
    (dict(attention="rmt", rmt=dict(num_tokens=5)), 64 * 5 * 3 * 2),           # d_model p l 2
    (dict(attention="full"), None),
])
def test_formulas_on_hand_computed_configs(overrides, expected):
  nested = {k: overrides.pop(k) for k in ("xl", "bswa", "memorizing", "compressive", "rmt")
            if k in overrides}
  cfg = model_config(**_BASE, **overrides)
  for key, values in nested.items():
    cfg[key].update(values)
  assert _load().memory_floats(cfg) == expected


def test_paper_settings_print_the_paper_figures(capsys):
  module = _load()
  rows = {r["name"]: r for r in module.table(list(module.paper_models().items()))[1]}
  assert rows["Infini-Transformer"]["floats"] == 128 * 129 * 8 * 12 == 1_585_152
  assert rows["Transformer-XL"]["floats"] == 256 * 8 * 2048 * 12
  assert rows["Memorizing Transformers"]["floats"] == 256 * 8 * (2048 * 12 + 65_000)
  assert rows["RMT"]["floats"] == 1024 * 100 * 12 * 2
  text = module.main([])
  lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()[2:]}
  assert "| 1.6M | 114x |" in lines["Infini-Transformer"]
  assert "| 50M | 3.7x |" in lines["Transformer-XL"]
  assert "| 183M | 1.0x | 114x |" in lines["Memorizing Transformers"]
  assert "| 2.5M | 73x |" in lines["RMT"]
  assert "183M" in capsys.readouterr().out


def test_config_files_are_read():
  module = _load()
  model = module.load_model_config(os.path.join(_ROOT, "configs", "passkey", "rmt.py") + ":paper")
  assert module.memory_floats(model) == model.d_model * 100 * model.num_layers * 2


def test_small_and_empty_memories_are_tabulated():
  """Sizes far below 1M keep 2 significant digits (no zero division); an empty memory has no ratio."""
  module = _load()
  small = model_config(**_BASE, attention="infini")             # 3,264 floats
  empty = model_config(**_BASE, attention="bswa")
  empty.bswa.mem_blocks = 0
  xl = model_config(**_BASE, attention="xl")                    # 32 * 4 * 32 * 3 = 12,288 floats
  text, rows = module.table([("small", small), ("empty", empty), ("xl", xl)])
  assert rows[0]["millions"] == 0.0033 and rows[2]["millions"] == 0.012
  assert rows[1]["floats"] == 0 and rows[1]["comp"] is None
  assert "| 0.0033M | 3.6x | 1.0x |" in text  # 0.012 / 0.0033
