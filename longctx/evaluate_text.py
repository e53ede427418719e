"""Evaluators on real text: `lm` (held-out language modelling) and `booksum` (summarisation + ROUGE).

lm: every held-out document is scored whole (or its first evals.lm.max_tokens tokens, a cut stated
in the results) by longctx.evaluate.Streamer, chunk by chunk with the memory carried, from a fresh
memory. Every token after the first is a target. Reported per document and pooled over documents:
  token_perplexity = exp(sum nll / targets)          (nats per token, Infini Table 2's metric)
  bits_per_token   = sum nll / ln 2 / targets
  bits_per_byte    = sum nll / ln 2 / bytes of the target tokens (tokenizer.token_bytes)
  accuracy         = next-token argmax accuracy (FAM Table 11's PG-19 metric)
Pooling is over tokens (a long document weighs more), as the papers average token perplexity.

booksum: each document (its first evals.booksum.max_input_tokens tokens when > 0; Infini evaluates
at 500K) plus the separator is streamed block by block by longctx.models.generate.Generator, which
then decodes up to max_new_tokens with temperature/top-p (Infini: 0.5 / 0.95 / 1024), stopping at the
end-of-text token. ROUGE-1/2/L F-measures (x100) per example against the reference, averaged over
examples; "overall" is the geometric mean of the three averages (as Infini Table 4's Overall).
"""
import json
import math
import os
import time

import jax
import numpy as np
from absl import logging

from longctx.data import booksum as booksum_lib
from longctx.data.sources import TEXT_SOURCES, check_tokenizer_fits
from longctx.data.text import tokenize_document
from longctx.data.tokenizers import tokenizer_from_config
from longctx.models.generate import Generator


def heldout_texts(cfg):
  """[(name, text)] of the lm evaluator's held-out documents."""
  ev = cfg.evals.lm
  source = ev.source or cfg.data.source
  if source == "pg19":
    from longctx.data.pg19 import pg19_texts
    return pg19_texts(ev.split or "validation", cfg.data.tfds_data_dir, ev.max_docs)
  if source == "local":
    from longctx.data.local_text import local_texts
    if not ev.path:
      raise ValueError("evals.lm.path is empty: the held-out documents of a local corpus are a "
                       "separate folder of .txt files (never the training folder by default)")
    texts = local_texts(ev.path)
    return texts[:ev.max_docs] if ev.max_docs > 0 else texts
  raise ValueError(f"evals.lm.source={source!r} is not one of {TEXT_SOURCES}")


def score_document(streamer, params, tokens, token_bytes):
  """tokens [n] -> dict of sums over its n - 1 targets."""
  inputs, targets = tokens[None, :-1], tokens[None, 1:]
  res = streamer.score(params, inputs, targets, np.ones(inputs.shape, np.float32))
  return {"nll": float(np.sum(res["loss"], dtype=np.float64)), "targets": int(targets.size),
          "bytes": int(token_bytes[targets[0]].sum()), "correct": float(res["correct"].sum())}


def summarize(sums) -> dict:
  nll, n, nbytes = sums["nll"], sums["targets"], sums["bytes"]
  return {"targets": n, "bytes": nbytes, "token_perplexity": math.exp(nll / n),
          "bits_per_token": nll / math.log(2) / n,
          "bits_per_byte": nll / math.log(2) / max(nbytes, 1), "accuracy": sums["correct"] / n}


def evaluate_lm(cfg, graphdef, params, workdir):
  from longctx.evaluate import Streamer
  ev = cfg.evals.lm
  tokenizer = tokenizer_from_config(cfg.data)
  check_tokenizer_fits(tokenizer, cfg.model)
  streamer = Streamer(graphdef, cfg.model, ev.chunk_blocks)
  total = {"nll": 0.0, "targets": 0, "bytes": 0, "correct": 0.0}
  docs = []
  t0 = time.time()
  for name, text in heldout_texts(cfg):
    tokens = tokenize_document(tokenizer, text, name)
    full_len = len(tokens)
    if ev.max_tokens > 0:
      tokens = tokens[:ev.max_tokens]
    sums = score_document(streamer, params, tokens, tokenizer.token_bytes)
    for k in total:
      total[k] += sums[k]
    docs.append(dict(summarize(sums), name=name, tokens=full_len, scored_tokens=len(tokens)))
    logging.info("lm %s: %d tokens, %.4f bits/byte", name, len(tokens), docs[-1]["bits_per_byte"])
  result = dict(summarize(total), attention=cfg.model.attention, documents=len(docs),
                max_tokens=int(ev.max_tokens), seconds=time.time() - t0, per_document=docs)
  with open(os.path.join(workdir, "lm.json"), "w") as f:
    json.dump(result, f, indent=1)
  logging.info("lm: %d documents, %d targets: %.4f bits/byte, token perplexity %.3f",
               len(docs), result["targets"], result["bits_per_byte"], result["token_perplexity"])
  return result


def evaluate_booksum(cfg, graphdef, params, workdir):
  ev = cfg.evals.booksum
  tokenizer = tokenizer_from_config(cfg.data)
  check_tokenizer_fits(tokenizer, cfg.model)
  source = ev.source or cfg.data.source
  pairs = booksum_lib.summary_pairs("tfds" if source == "booksum" else source,
                                    tfds_name=f"booksum/{cfg.data.booksum_config}", split=ev.split,
                                    data_dir=cfg.data.tfds_data_dir, path=ev.path or cfg.data.path)
  count = len(pairs) if ev.max_examples <= 0 else min(ev.max_examples, len(pairs))
  generator = Generator(graphdef, cfg.model, ev.chunk_blocks)
  rng = jax.random.key(ev.seed)
  rows = []
  t0 = time.time()
  for i in range(count):
    document, summary = pairs[i]
    name = f"booksum {ev.split} example {i}"
    prompt = booksum_lib.prompt_tokens(tokenizer, document, name)
    sep = len(tokenizer.encode(booksum_lib.SEPARATOR))
    if ev.max_input_tokens > 0 and len(prompt) - sep > ev.max_input_tokens:
      prompt = np.concatenate([prompt[:ev.max_input_tokens], prompt[-sep:]])
    rng, key = jax.random.split(rng)
    out = generator.generate(params, prompt[None], ev.max_new_tokens, temperature=ev.temperature,
                             top_p=ev.top_p, rng=key)["tokens"][0]
    stop = np.flatnonzero(out == tokenizer.eos_id)
    decoded = out[:stop[0]] if len(stop) else out
    prediction = tokenizer.decode(decoded)
    reference = booksum_lib._check_text(summary, name)
    scores = booksum_lib.rouge_scores(prediction, reference)
    rows.append(dict(scores, example=i, input_tokens=int(len(prompt)),
                     generated_tokens=int(len(decoded)), ended=bool(len(stop)),
                     prediction=prediction))
  mean = {k: float(np.mean([r[k] for r in rows])) if rows else 0.0
          for k in booksum_lib.ROUGE_TYPES}
  result = dict(mean, overall=booksum_lib.geometric_mean([mean[k] for k in booksum_lib.ROUGE_TYPES]),
                attention=cfg.model.attention, examples=len(rows), seconds=time.time() - t0,
                temperature=ev.temperature, top_p=ev.top_p, max_new_tokens=ev.max_new_tokens,
                per_example=rows)
  with open(os.path.join(workdir, "booksum.json"), "w") as f:
    json.dump(result, f, indent=1)
  logging.info("booksum: %d examples: R-1 %.1f R-2 %.1f R-L %.1f overall %.1f", len(rows),
               result["rouge1"], result["rouge2"], result["rougeL"], result["overall"])
  return result
