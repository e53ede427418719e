"""Evaluators by name. `passkey`: a grid of prompt lengths x key depths (and optionally a user's JSONL
file of long prompts), scored on the answer tokens, streamed chunk by chunk with the memory carried
between calls of ONE compiled function, so a 1M-token prompt costs one chunk of activations and
compiles once for every length.

Metrics per (length, depth), as Infini-attention Table 3: token-level key accuracy (teacher-forced:
the fraction of answer tokens the model predicts as argmax given the true prefix) and exact match
(every answer token right, still teacher-forced). With `evals.passkey.generate`, also generated exact
match: the prompt is streamed, the answer's length in tokens is decoded greedily
(longctx.models.generate) and compared with the answer.
"""
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx

from longctx.data import niah, passkey, sorting
from longctx.data.sources import seq_len_at
from longctx.data.tokenizers import make_tokenizer
from longctx.models import scan
from longctx.models.generate import Generator

EVALUATORS = ("passkey", "sorting", "niah", "lm", "booksum")  # lm, booksum: longctx/evaluate_text.py


class Streamer:
  """Scores a long token sequence chunk by chunk with one compiled function.

  Chunk = chunk_blocks * block_len tokens. Inputs are padded at the END to a whole chunk with weight
  0; padding after the last scored token cannot change it (causal model), so scores are exact.
  `full` attention has no recurrence: its whole (padded) sequence is one chunk.
  """

  def __init__(self, graphdef, model_cfg, chunk_blocks: int):
    self.model_cfg = model_cfg
    self.full = model_cfg.attention == "full"
    self.chunk = chunk_blocks * model_cfg.block_len
    self.graphdef = graphdef

    def stream(params, memory, chunk):
      return scan.run_blocks(graphdef, params, memory, chunk, model_cfg)
    self._stream = jax.jit(stream)

  def init_memory(self, params, batch):
    return nnx.merge(self.graphdef, params).init_memory(batch)

  def score(self, params, inputs, targets, weights):
    """inputs/targets/weights [B, T] numpy -> per-token 'correct' and 'loss' [B, T] numpy."""
    b, t = inputs.shape
    chunk = (-(-t // self.model_cfg.block_len) * self.model_cfg.block_len) if self.full else self.chunk
    padded = -(-t // chunk) * chunk
    pad = lambda x: np.pad(x, ((0, 0), (0, padded - t)))
    inputs, targets, weights = pad(inputs), pad(targets), pad(weights.astype(np.float32))
    memory = self.init_memory(params, b)
    correct, loss = [], []
    for start in range(0, padded, chunk):
      sl = slice(start, start + chunk)
      piece = {
          "inputs": jnp.asarray(inputs[:, sl]), "targets": jnp.asarray(targets[:, sl]),
          "weights": jnp.asarray(weights[:, sl]),
          "positions": jnp.broadcast_to(jnp.arange(start, start + chunk, dtype=jnp.int32), (b, chunk)),
          "reset": jnp.full((b,), start == 0),
      }
      memory, outs = self._stream(params, memory, piece)
      correct.append(np.asarray(outs["correct"]))
      loss.append(np.asarray(outs["loss"]))
    return {"correct": np.concatenate(correct, 1)[:, :t], "loss": np.concatenate(loss, 1)[:, :t]}


def _trained_len(cfg) -> int:
  """The training length of the last step (the end of data.seq_len_schedule, if any)."""
  return seq_len_at(cfg.data, max(cfg.train.steps - 1, 0))


def _answer_scores(correct_row, answer_targets):
  """Token accuracy and exact match on the positions whose target is an answer token."""
  hits = correct_row[answer_targets]
  return float(hits.mean()), float(hits.all())


def mean_and_se(values):
  """Mean and standard error over independent units (prompts, documents): std (ddof 1) / sqrt(n);
  NaN for a single unit. The unit is the prompt or the document, not the token: the tokens of one
  answer are scored on the same memory and are not independent draws."""
  values = np.asarray(values, np.float64)
  se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
  return float(values.mean()), se


def cell_metrics(scores):
  """(token_acc, exact) per prompt -> the metrics of one grid cell, with the standard error of the
  token accuracy over prompts."""
  acc, se = mean_and_se([s[0] for s in scores])
  return {"token_accuracy": acc, "token_accuracy_se": se,
          "exact_match": float(np.mean([s[1] for s in scores])), "samples": len(scores)}


def se_line(rows):
  """One line for a grid's markdown: the largest standard error of a cell."""
  worst = max((r["token_accuracy_se"] for r in rows), default=float("nan"))
  n = sorted({r["samples"] for r in rows})
  return (f"Standard error of a cell's token accuracy over its {'/'.join(map(str, n))} prompts: "
          f"at most {100 * worst:.1f} points (per cell in the JSON, `token_accuracy_se`).")


def score_examples(streamer, params, examples):
  """examples: token arrays with answer masks -> list of (token_acc, exact)."""
  out = []
  for ex in examples:
    tokens, mask = np.asarray(ex.tokens), np.asarray(ex.answer_mask)
    inputs, targets, weights = tokens[None, :-1], tokens[None, 1:], mask[None, 1:]
    res = streamer.score(params, inputs, targets, weights.astype(np.float32))
    out.append(_answer_scores(res["correct"][0], mask[1:]))
  return out


def generated_exact_match(generator, params, examples):
  """Greedy decoding of each answer after its prompt: 1.0 where every decoded token is right."""
  out = []
  for ex in examples:
    tokens, mask = np.asarray(ex.tokens), np.asarray(ex.answer_mask)
    answer = tokens[mask]
    decoded = generator.generate(params, tokens[None, ~mask], len(answer))["tokens"][0]
    out.append(float(np.array_equal(decoded, answer)))
  return out


def passkey_grid(cfg_eval, streamer, params, generator=None):
  """Evaluates every (length, depth) of the grid with cfg_eval.samples prompts each; with a
  generator, also the generated exact match."""
  rows = []
  for length in cfg_eval.lengths:
    for depth in cfg_eval.depths:
      t0 = time.time()
      examples = [passkey.eval_example(length + 1, depth, cfg_eval.key_len,
                                       seed=cfg_eval.seed * 1000003 + i,
                                       template=cfg_eval.template)
                  for i in range(cfg_eval.samples)]
      scores = score_examples(streamer, params, examples)
      rows.append({"length": int(length), "depth": float(depth), **cell_metrics(scores),
                   "seconds": time.time() - t0})
      acc, em = rows[-1]["token_accuracy"], rows[-1]["exact_match"]
      if generator is not None:
        rows[-1]["generated_exact_match"] = float(np.mean(
            generated_exact_match(generator, params, examples)))
        rows[-1]["seconds"] = time.time() - t0
      logging.info("passkey length=%d depth=%.2f token_acc=%.3f exact=%.3f (%.1fs)", length, depth,
                   acc, em, time.time() - t0)
  return rows


def markdown_table(rows, key="token_accuracy"):
  lengths = sorted({r["length"] for r in rows})
  depths = sorted({r["depth"] for r in rows})
  cell = {(r["length"], r["depth"]): r[key] for r in rows}
  head = "| length | " + " | ".join(f"depth {d:g}" for d in depths) + " |"
  sep = "|---" * (len(depths) + 1) + "|"
  body = ["| " + f"{n:,}" + " | " + " | ".join(f"{100 * cell[(n, d)]:.0f}" for d in depths) + " |"
          for n in lengths]
  return "\n".join([head, sep] + body)


def heatmap(rows, path, title):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  lengths = sorted({r["length"] for r in rows})
  depths = sorted({r["depth"] for r in rows})
  grid = np.array([[next(r["token_accuracy"] for r in rows if r["length"] == n and r["depth"] == d)
                    for d in depths] for n in lengths])
  fig, ax = plt.subplots(figsize=(1 + 0.6 * len(depths), 1 + 0.5 * len(lengths)))
  im = ax.imshow(grid * 100, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
  ax.set_xticks(range(len(depths)), [f"{d:g}" for d in depths])
  ax.set_yticks(range(len(lengths)), [f"{n:,}" for n in lengths])
  ax.set_xlabel("key depth (fraction of the filler)")
  ax.set_ylabel("prompt length (tokens)")
  ax.set_title(title, fontsize=9)
  for i in range(len(lengths)):
    for j in range(len(depths)):
      ax.text(j, i, f"{100 * grid[i, j]:.0f}", ha="center", va="center", fontsize=7)
  fig.colorbar(im, ax=ax, label="token accuracy (%)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def evaluate_passkey(cfg, graphdef, params, workdir):
  ev = cfg.evals.passkey
  streamer = Streamer(graphdef, cfg.model, ev.chunk_blocks)
  generator = Generator(graphdef, cfg.model, ev.chunk_blocks) if ev.generate else None
  result = {"attention": cfg.model.attention}
  if ev.lengths:
    rows = passkey_grid(ev, streamer, params, generator)
    result["grid"] = rows
    table = markdown_table(rows)
    text = (f"# Passkey token accuracy (%), attention={cfg.model.attention}\n\n{table}\n\n"
            f"{se_line(rows)}\n\nExact match, teacher-forced (%):\n\n{markdown_table(rows, 'exact_match')}\n")
    if generator is not None:
      text += f"\nExact match, generated (%):\n\n{markdown_table(rows, 'generated_exact_match')}\n"
    with open(os.path.join(workdir, "passkey.md"), "w") as f:
      f.write(text)
    heatmap(rows, os.path.join(workdir, "passkey.png"),
            f"passkey, {cfg.model.attention}, trained at {_trained_len(cfg)} tokens")
    logging.info("Passkey token accuracy (%%):\n%s", table)
  if ev.jsonl:
    tokenizer = make_tokenizer(cfg.data.tokenizer)
    examples = passkey.load_jsonl_prompts(ev.jsonl, tokenizer)
    scores = score_examples(streamer, params, examples)
    result["jsonl"] = [{"line": ex.line, "token_accuracy": a, "exact_match": e}
                       for ex, (a, e) in zip(examples, scores)]
    if generator is not None:
      for row, g in zip(result["jsonl"], generated_exact_match(generator, params, examples)):
        row["generated_exact_match"] = g
  with open(os.path.join(workdir, "passkey.json"), "w") as f:
    json.dump(result, f, indent=1)
  return result


def sorting_rows(ev, streamer, params):
  """infinity-former's sorting task per length: accuracy on the 20 sorted-symbol targets
  (teacher-forced, as the official evaluation) and exact match (all 20 right), over ev.samples
  documents scored ev.batch_size at a time, streamed chunk by chunk."""
  rows = []
  for length in ev.lengths:
    t0 = time.time()
    data = sorting.eval_batch(ev.seed, ev.samples, length)
    hits = []
    for start in range(0, ev.samples, ev.batch_size):
      sl = slice(start, start + ev.batch_size)
      res = streamer.score(params, data["inputs"][sl], data["targets"][sl], data["weights"][sl])
      mask = data["weights"][sl] > 0
      hits.append(res["correct"][mask].reshape(-1, sorting.TARGET_LEN))
    hits = np.concatenate(hits)  # [samples, 20]
    # The standard error over documents (a document's 20 targets are not independent draws).
    acc, se = mean_and_se(hits.mean(axis=1))
    rows.append({"length": int(length), "token_accuracy": acc, "token_accuracy_se": se, "exact_match": float(hits.all(axis=1).mean()),
                 "samples": int(len(hits)), "seconds": time.time() - t0})
    logging.info("sorting length=%d token_acc=%.3f exact=%.3f (%.1fs)", length,
                 rows[-1]["token_accuracy"], rows[-1]["exact_match"], time.time() - t0)
  return rows


def evaluate_sorting(cfg, graphdef, params, workdir):
  ev = cfg.evals.sorting
  rows = sorting_rows(ev, Streamer(graphdef, cfg.model, ev.chunk_blocks), params)
  table = "\n".join(["| length | token accuracy (%) | +- s.e. (documents) | exact match (%) |",
                     "|---|---|---|---|"] +
                    [f"| {r['length']:,} | {100 * r['token_accuracy']:.1f} | "
                     f"{100 * r['token_accuracy_se']:.1f} | {100 * r['exact_match']:.1f} |"
                     for r in rows])
  with open(os.path.join(workdir, "sorting.md"), "w") as f:
    f.write(f"# Sorting, attention={cfg.model.attention}, trained at {_trained_len(cfg)} tokens\n\n"
            f"{table}\n")
  result = {"attention": cfg.model.attention, "rows": rows}
  with open(os.path.join(workdir, "sorting.json"), "w") as f:
    json.dump(result, f, indent=1)
  logging.info("Sorting accuracy:\n%s", table)
  return result


def niah_grid(ev, streamer, params, haystack):
  """S-NIAH: every (needle type, length, depth) with ev.samples needles each (Titans Table 2)."""
  rows = []
  for needle_type in ev.needles:
    for length in ev.lengths:
      for depth in ev.depths:
        t0 = time.time()
        examples = [niah.eval_example(length + 1, depth, needle_type, ev.seed * 1000003 + i,
                                      haystack, ev.digits) for i in range(ev.samples)]
        scores = score_examples(streamer, params, examples)
        rows.append({"needle": needle_type, "length": int(length), "depth": float(depth),
                     **cell_metrics(scores), "seconds": time.time() - t0})
        logging.info("niah %s length=%d depth=%.2f token_acc=%.3f exact=%.3f", needle_type, length,
                     depth, rows[-1]["token_accuracy"], rows[-1]["exact_match"])
  return rows


def evaluate_niah(cfg, graphdef, params, workdir):
  ev = cfg.evals.niah
  haystack = niah.make_haystack(ev.haystack, tuple(ev.files), make_tokenizer(cfg.data.tokenizer))
  rows = niah_grid(ev, Streamer(graphdef, cfg.model, ev.chunk_blocks), params, haystack)
  name = cfg.model.attention + (f"/{cfg.model.titans.variant}" if cfg.model.attention == "titans"
                                else "")
  parts = [f"# S-NIAH ({ev.haystack} haystack), {name}, trained at {_trained_len(cfg)} tokens\n"]
  for needle_type in ev.needles:
    sub = [r for r in rows if r["needle"] == needle_type]
    parts.append(f"## {needle_type}: token accuracy (%)\n\n{markdown_table(sub)}\n\n"
                 f"{se_line(sub)}\n\nExact match (%):\n\n{markdown_table(sub, 'exact_match')}\n")
    heatmap(sub, os.path.join(workdir, f"niah_{needle_type}.png"),
            f"S-NIAH {needle_type}, {name}, trained at {_trained_len(cfg)} tokens")
  with open(os.path.join(workdir, "niah.md"), "w") as f:
    f.write("\n".join(parts))
  logging.info("%s", "\n".join(parts))
  result = {"attention": name, "grid": rows}
  with open(os.path.join(workdir, "niah.json"), "w") as f:
    json.dump(result, f, indent=1)
  return result


def run_evaluators(cfg, graphdef, params, workdir):
  results = {}
  for name in cfg.evals.run:
    if name == "passkey":
      results[name] = evaluate_passkey(cfg, graphdef, params, workdir)
    elif name == "sorting":
      results[name] = evaluate_sorting(cfg, graphdef, params, workdir)
    elif name in ("lm", "booksum"):
      from longctx import evaluate_text
      fn = evaluate_text.evaluate_lm if name == "lm" else evaluate_text.evaluate_booksum
      results[name] = fn(cfg, graphdef, params, workdir)
    elif name == "niah":
      results[name] = evaluate_niah(cfg, graphdef, params, workdir)
    else:
      raise ValueError(f"evals.run names {name!r}, not one of {EVALUATORS}")
  return results
