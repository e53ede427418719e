"""Peak memory of evaluating ONE long passkey prompt, streamed block by block (issue bar: a 1M-token
prompt peaks below 2 GB). Runs in its own process so the peak RSS is the evaluation's alone.

  python scripts/eval_memory.py --config=configs/passkey/infini.py:cpu --length=1048576 \
      [--workdir=runs/passkey_infini_cpu]   # trained weights if given, else a fresh init

Prints one JSON line: length, seconds, tokens/s, peak RSS (MiB), token accuracy, exact match.
"""
import argparse
import importlib.util
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_config(spec: str):
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("cfg", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def apply_overrides(cfg, overrides):
  """'a.b=value' strings onto a locked ConfigDict; the value is parsed as a Python literal when it
  is one (numbers, booleans, tuples), else kept as a string. An unknown field fails."""
  import ast
  for item in overrides:
    field, sep, text = item.partition("=")
    if not sep:
      raise SystemExit(f"--set {item!r}: expected FIELD=VALUE")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    *parents, leaf = field.split(".")
    node = cfg
    for name in parents:
      node = node[name]
    node[leaf] = value


def check_model_matches_workdir(cfg, workdir: str):
  """Stops when cfg.model differs from the model the workdir was trained with (its config.json).

  Why: a probe restores parameters by shape, and a field that changes no shape (an update rule, a
  gate, a block length) would otherwise run the trained weights through another model, silently.
  A workdir without config.json (not written by longctx.main) is not checked, nor are fields newer
  than the workdir's run (absent from its config.json)."""
  from flax import traverse_util
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    trained = traverse_util.flatten_dict(json.load(f).get("model", {}), sep=".")
  wanted = traverse_util.flatten_dict(json.loads(cfg.model.to_json()), sep=".")
  differ = [k for k in sorted(trained) if trained[k] != wanted.get(k)]
  if differ:
    fixes = " ".join(f"--set model.{k}={trained[k]!r}" for k in differ)
    raise SystemExit(
        f"{path}: the workdir's model differs from the config's in {len(differ)} field(s): "
        + "; ".join(f"model.{k} trained {trained[k]!r}, config {wanted.get(k)!r}"
                    for k in differ[:5])
        + f". To load it as trained: {fixes}")


def load_model(spec: str, overrides=(), workdir=None):
  """The model of config `spec` ('file.py:arg') with `overrides` ('a.b=value'), its parameters
  restored from workdir/checkpoints (latest step) when a workdir is given, else freshly
  initialised. Returns (cfg, graphdef, params, the checkpoint's metadata or None)."""
  import jax
  from longctx import checkpoint as ckpt_lib
  from longctx import optim, train
  cfg = load_config(spec)
  apply_overrides(cfg, overrides)
  if workdir:
    check_model_matches_workdir(cfg, workdir)
  graphdef, params, model = train.build_model(cfg)
  if not workdir:
    return cfg, graphdef, params, None
  tx, _ = optim.make_optimizer(cfg.train)
  state = train.init_state(cfg, params, model, tx)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
  with ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    # The trained params, not a moving average the run may keep (train.ema_decay): that is
    # skipped unless the overrides switch it on, and is then returned instead.
    state, meta = ckpt.restore(None, abstract, restartable=("ema_params",))
  ema = state.get("ema_params")
  return cfg, graphdef, state["params"] if ema is None else ema, meta


def niah_batch(cfg, length: int, prompts: int, depth: float = 0.0):
  """`prompts` S-NIAH passkey prompts of `length` tokens with the needle at `depth` (0, the
  default, is the farthest from the question: only a memory can carry it), as a model batch
  (seeds 0..prompts-1)."""
  import jax.numpy as jnp
  import numpy as np
  from longctx.data import niah
  haystack = niah.make_haystack(cfg.evals.niah.haystack, cfg.evals.niah.files)
  examples = [niah.eval_example(length + 1, depth, "passkey", seed, haystack, cfg.evals.niah.digits)
              for seed in range(prompts)]
  tokens = np.stack([e.tokens for e in examples])
  return {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:]),
          "weights": jnp.asarray(np.stack([e.answer_mask[1:] for e in examples]), jnp.float32),
          "reset": jnp.ones((prompts,), bool)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--length", type=int, default=1 << 20)
  parser.add_argument("--depth", type=float, default=0.0)
  parser.add_argument("--workdir", default="", help="restore the latest checkpoint from here")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="config override as on the main command line, e.g. "
                           "--set data.batch_size=16 (repeatable; must match the trained run)")
  args = parser.parse_args()

  from longctx import evaluate
  from longctx.data import passkey

  cfg, graphdef, params, _ = load_model(args.config, args.set, args.workdir)
  base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  streamer = evaluate.Streamer(graphdef, cfg.model, cfg.evals.passkey.chunk_blocks)
  example = passkey.eval_example(args.length + 1, args.depth, cfg.evals.passkey.key_len, seed=7)
  t0 = time.time()
  (acc, exact), = evaluate.score_examples(streamer, params, [example])
  seconds = time.time() - t0
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print(json.dumps({"length": args.length, "depth": args.depth, "seconds": round(seconds, 1),
                    "tokens_per_s": round(args.length / seconds), "peak_rss_mib": round(peak),
                    "rss_before_eval_mib": round(base_rss), "token_accuracy": acc,
                    "exact_match": exact, "attention": cfg.model.attention,
                    "load_avg": os.getloadavg()}))


if __name__ == "__main__":
  main()
