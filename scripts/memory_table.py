r"""Memory footprint of each model's carried memory, in floats, with the formulas of Infini-attention
Table 1 (papers.md 3(c)), and compression ratios as in its Table 2.

  python scripts/memory_table.py                      # the paper's settings (Infini Tables 1-2)
  python scripts/memory_table.py configs/passkey/infini.py:paper configs/passkey/xl.py:paper \
      configs/passkey/memorizing.py:paper configs/passkey/rmt.py:paper

Formulas (l layers, H heads, d_key = d_value = D, N = the XL cache length = xl.mem_blocks x L):
  infini        d_key (d_value + 1) H l                       M and z per head and layer
  xl, bswa      (d_key + d_value) H N l                       cached K/V (bswa: bswa.mem_blocks)
  memorizing    (d_key + d_value) H (N l + S n_knn)           XL cache on every layer plus the kNN
                                                              memory of S = capacity pairs on its
                                                              n_knn layers (Table 1 writes N x S)
  compressive   (d_key + d_value) H (N + n_cm) l              XL cache + compressed slots
  rmt           d_model p l 2                                 p memory tokens (read and write copies)
  full          none carried (its cache grows with the input: "-")
Attentions this script does not know are listed as "not covered".

Sizes are shown in millions (2 significant digits, units above 100M). The ratio columns divide the ROUNDED sizes,
as the paper's Table 2 does (183M / 50M = 3.7x, 183M / 1.6M = 114x); `comp.` is the largest
memory of the table (Memorizing at the paper's settings) over each row's.

The paper's settings: 12 layers, 8 heads x 128, d_model 1024, segment 2048; XL cache 2048;
Memorizing adds a kNN memory of "65K" on one layer; RMT 100 memory tokens. Decision: 183M is
reproduced when "65K" is counted as 65,000 pairs (133.1M + the 12-layer XL cache 50.3M = 183.5M);
65,536 gives 184.5M ("185M"), so the paper evidently rounded the memory size to 65,000.
"""
import argparse
import importlib.util
import math
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

from longctx.config import model_config  # noqa: E402


def memory_floats(model):
  """Floats carried between blocks by a model config (see the module docstring), or None."""
  h, l = model.num_heads, model.num_layers
  dk = dv = model.d_model // model.num_heads
  name = model.attention
  xl_len = model.xl.mem_blocks * model.block_len
  if name == "infini":
    return dk * (dv + 1) * h * l
  if name == "xl":
    return (dk + dv) * h * xl_len * l
  if name == "bswa":
    return (dk + dv) * h * model.bswa.mem_blocks * model.block_len * l
  if name == "memorizing":
    knn_layers = len(model.memorizing.layers) or l
    return (dk + dv) * h * (xl_len * l + model.memorizing.capacity * knn_layers)
  if name == "compressive":
    return (dk + dv) * h * (xl_len + model.compressive.compressed_len) * l
  if name == "rmt":
    return model.d_model * model.rmt.num_tokens * l * 2
  return None


def paper_models():
  """Infini Tables 1-2 settings as model configs (name -> config)."""
  base = dict(d_model=1024, num_heads=8, num_layers=12, block_len=2048, mlp_dim=4096)
  return {
      "Transformer-XL": model_config(attention="xl", xl=dict(mem_blocks=1), **base),
      "Memorizing Transformers": model_config(
          attention="memorizing", memorizing=dict(capacity=65_000, layers=(8,)), **base),
      "RMT": model_config(attention="rmt", rmt=dict(num_tokens=100), **base),
      "Infini-Transformer": model_config(attention="infini", **base),
  }


def _rounded_millions(floats):
  """Millions to 2 significant digits, or to the unit above 100 (1.585M -> 1.6, 50.3 -> 50,
  183.45 -> 183, 0.0127 -> 0.013)."""
  m = floats / 1e6
  if m == 0:
    return 0.0
  magnitude = math.floor(math.log10(m))
  return round(m, max(2, magnitude + 1) - 1 - magnitude)


def _fmt_millions(m):
  return f"{m:g}M"


def _fmt_ratio(r):
  if r >= 10:
    return f"{r:.0f}x"
  return f"{r:.1f}x" if r >= 1 else f"{r:.2g}x"


def table(named_models):
  """named_models: list of (name, model config) -> markdown table (str) and rows (dicts)."""
  rows = []
  for name, model in named_models:
    floats = memory_floats(model)
    rows.append(dict(name=name, attention=model.attention, floats=floats,
                     millions=None if floats is None else _rounded_millions(floats)))
  sized = [r for r in rows if r["millions"]]
  largest = max((r["millions"] for r in sized), default=None)
  infini = next((r["millions"] for r in sized if r["attention"] == "infini"), None)
  lines = ["| model | attention | memory (floats) | size | comp. (largest / this) | this / Infini |",
           "|---|---|---|---|---|---|"]
  for r in rows:
    if r["floats"] is None:
      note = "-" if r["attention"] == "full" else "not covered"
      lines.append(f"| {r['name']} | {r['attention']} | {note} | {note} | | |")
      continue
    r["comp"] = largest / r["millions"] if r["millions"] else None
    r["vs_infini"] = r["millions"] / infini if infini else None
    lines.append(f"| {r['name']} | {r['attention']} | {r['floats']:,} | {_fmt_millions(r['millions'])} "
                 f"| {_fmt_ratio(r['comp']) if r['comp'] else ''} | "
                 f"{_fmt_ratio(r['vs_infini']) if r['vs_infini'] is not None else ''} |")
  return "\n".join(lines), rows


def load_model_config(spec):
  """'configs/passkey/xl.py:paper' -> the config's model section."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None).model


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("configs", nargs="*", help="config files with preset, e.g. configs/passkey/xl.py:paper")
  args = parser.parse_args(argv)
  if args.configs:
    named = [(spec, load_model_config(spec)) for spec in args.configs]
    title = "Carried memory of the given configs"
  else:
    named = list(paper_models().items())
    title = "Infini-attention Table 1 formulas at the paper's settings (Table 2: 50M 3.7x, 183M, 2.5M 73x, 1.6M 114x)"
  text, _ = table(named)
  print(f"{title}\n\n{text}")
  return text


if __name__ == "__main__":
  main()
