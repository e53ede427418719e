"""The text task end to end: streaming a document across training steps with the carried memory equals
one uninterrupted pass over it; a killed and resumed run (mid-document) ends with the parameters of an
uninterrupted one; bits per byte against a direct full-sequence decoder call; SentencePiece."""
import json
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import stop_after, tiny_model_config
from longctx import evaluate_text, train
from longctx.data.text import DocumentCorpus, DocumentStream
from longctx.models import scan
from longctx.models.decoder import Decoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(task, arch):
  """A config module by path, under a unique name (every task folder has an infini.py)."""
  import importlib.util
  path = os.path.join(ROOT, "configs", task, f"{arch}.py")
  spec = importlib.util.spec_from_file_location(f"{task}_{arch}_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


infini_config = load_config("pg19", "infini")


@pytest.mark.parametrize("attention, nested", [("xl", {}), ("bswa", {"bswa": dict(mem_blocks=1)}),
                                               ("infini", {})])
def test_streaming_across_steps_equals_one_pass(attention, nested):
  cfg = tiny_model_config(attention=attention, **nested)
  model = Decoder(cfg, nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  rng = np.random.default_rng(0)
  docs = [rng.integers(0, 32, size=n).astype(np.int32) for n in (25, 17)]
  corpus = DocumentCorpus(size=2, load=lambda i: docs[i], name=str)
  stream = DocumentStream(corpus, batch_size=2, seq_len=8, shuffle=False)
  memory = model.init_memory(2)
  streamed = {0: [], 1: []}
  for step in range(3):
    batch = stream.batch(step)
    memory, outs = scan.run_blocks(graphdef, params, memory, jax.tree.map(jnp.asarray, batch), cfg)
    for slot in range(2):
      w = batch["weights"][slot] > 0
      streamed[slot].append(np.asarray(outs["loss"])[slot][w])
  for slot, doc in enumerate(docs):
    n = 24 if slot == 0 else 16      # whole sequences of 8 targets in 3 steps (doc 1 ends at 16)
    one = {"inputs": jnp.asarray(doc[None, :n]), "targets": jnp.asarray(doc[None, 1:n + 1])}
    _, ref = scan.run_blocks(graphdef, params, model.init_memory(1), one, cfg)
    got = np.concatenate(streamed[slot])[:n]
    np.testing.assert_allclose(got, np.asarray(ref["loss"])[0], rtol=1e-5, atol=1e-5)


def _write_corpus(root, sizes, seed):
  rng = np.random.default_rng(seed)
  words = ["memory", "block", "the", "of", "segment", "attention", "book", "a", "long", "text"]
  os.makedirs(root, exist_ok=True)
  for i, n in enumerate(sizes):
    with open(os.path.join(root, f"doc{i:02d}.txt"), "w") as f:
      f.write(" ".join(rng.choice(words, size=n)))


def _smoke_cfg(tmp_path, steps=6, **overrides):
  _write_corpus(str(tmp_path / "train"), (40, 7, 25, 60, 12), seed=0)
  _write_corpus(str(tmp_path / "heldout"), (30, 9), seed=1)
  cfg = infini_config.get_config(f"smoke,path={tmp_path / 'train'},heldout={tmp_path / 'heldout'}")
  cfg.unlock()
  cfg.train.steps = steps
  cfg.update(overrides)
  cfg.lock()
  return cfg


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_killed_and_resumed_text_run_matches_an_uninterrupted_one(tmp_path, monkeypatch):
  cfg = _smoke_cfg(tmp_path)
  cfg.unlock()
  cfg.evals.run = ()
  cfg.lock()
  uninterrupted = train.train_and_evaluate(cfg, str(tmp_path / "a"))
  stop_after(monkeypatch, 3)
  killed = train.train_and_evaluate(cfg, str(tmp_path / "b"))
  assert killed["stopped_at"] == 3
  monkeypatch.undo()
  saved = json.load(open(tmp_path / "b" / "checkpoints" / "3" / "meta" / "metadata"))
  assert saved["data_step"] == 3 and any(offset > 0 for _, offset in saved["slots"])  # mid-document
  resumed = train.train_and_evaluate(cfg, str(tmp_path / "b"))
  assert resumed["final_step"] == 6
  for a, b in zip(_leaves(uninterrupted["params"]), _leaves(resumed["params"])):
    np.testing.assert_array_equal(a, b)


def test_lm_evaluator_writes_per_document_and_pooled_results(tmp_path):
  cfg = _smoke_cfg(tmp_path)
  graphdef, params, _ = train.build_model(cfg)
  result = evaluate_text.evaluate_lm(cfg, graphdef, params, str(tmp_path))
  saved = json.load(open(tmp_path / "lm.json"))
  assert saved["documents"] == 2 == len(result["per_document"])
  docs = result["per_document"]
  # Pooled over tokens: total bits / total bytes of the two documents.
  bits = sum(d["bits_per_byte"] * d["bytes"] for d in docs)
  np.testing.assert_allclose(result["bits_per_byte"], bits / sum(d["bytes"] for d in docs))
  assert result["targets"] == sum(min(d["tokens"], 256) - 1 for d in docs)


def test_lm_bits_per_byte_matches_a_direct_decoder_call(tmp_path):
  cfg = tiny_model_config(attention="full", vocab_size=256)
  model = Decoder(cfg, nnx.Rngs(1))
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  text = "Streaming memory models read long books. \u2713 " * 3
  tokens = np.frombuffer(text.encode(), np.uint8).astype(np.int32)
  from longctx.evaluate import Streamer
  sums = evaluate_text.score_document(Streamer(graphdef, cfg, 2), params, tokens, np.ones(256, int))
  got = evaluate_text.summarize(sums)
  logits, _ = model(jnp.asarray(tokens[None, :-1]), model.init_memory(1),
                    positions=jnp.arange(len(tokens) - 1)[None], reset=jnp.ones((1,), bool))
  logits = np.asarray(logits[0], np.float64)
  logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
      - logits.max(-1, keepdims=True)
  nll = -logp[np.arange(len(tokens) - 1), tokens[1:]].sum()
  assert got["bytes"] == len(text.encode()) - 1
  np.testing.assert_allclose(got["bits_per_byte"], nll / math.log(2) / (len(tokens) - 1), rtol=1e-5)
  np.testing.assert_allclose(got["token_perplexity"], math.exp(nll / (len(tokens) - 1)), rtol=1e-5)


def test_sentencepiece_round_trip_and_exact_token_bytes(tmp_path):
  pytest.importorskip("sentencepiece")
  sys.path.insert(0, os.path.join(ROOT, "scripts"))
  from train_tokenizer import train_tokenizer
  from longctx.data.tokenizers import make_tokenizer
  _write_corpus(str(tmp_path / "corpus"), (400, 300), seed=2)
  model_path = train_tokenizer(str(tmp_path / "corpus"), str(tmp_path / "sp"), vocab_size=300)
  tok = make_tokenizer("sentencepiece", model_path)
  assert tok.vocab_size <= 300 and tok.eos_id == 3
  text = "the long memory of a book \u2713 caf\u00e9\n  two  spaces"
  ids = tok.encode(text)
  np.testing.assert_array_equal(ids, tok.encode(text.encode("utf-8")))   # bytes == str
  assert tok.decode(ids) == text
  assert tok.token_bytes[ids].sum() == len(text.encode("utf-8"))
  with pytest.raises(ValueError, match="not valid UTF-8"):
    tok.encode(b"\xff")
  with pytest.raises(ValueError, match="no such SentencePiece model"):
    make_tokenizer("sentencepiece", str(tmp_path / "missing.model"))


def test_compile_only_takes_the_text_batch_with_positions(tmp_path):
  cfg = _smoke_cfg(tmp_path)
  cfg.unlock()
  cfg.train.compile_only = True
  cfg.lock()
  assert train.train_and_evaluate(cfg, str(tmp_path / "c"))["compiled"]


@pytest.mark.parametrize("task, arch", [("pg19", a) for a in ("memorizing", "compressive", "rmt",
                                                                 "fam", "titans_mac",
                                                                 "infinity_former")]
                         + [("lm", "infinity_former"), ("lm", "titans_lmm")])
def test_memory_model_text_configs_compile_their_smoke_step(tmp_path, task, arch):
  """The memory models' text configs (carried memory across steps included) build and compile."""
  _write_corpus(str(tmp_path / "train"), (40, 7, 25), seed=0)
  _write_corpus(str(tmp_path / "heldout"), (30,), seed=1)
  cfg = load_config(task, arch).get_config(
      f"smoke,path={tmp_path / 'train'},heldout={tmp_path / 'heldout'}")
  cfg.unlock()
  cfg.train.compile_only = True
  cfg.lock()
  assert train.train_and_evaluate(cfg, str(tmp_path / "c"))["compiled"]


@pytest.mark.slow
def test_pg19_paper_preset_compiles(tmp_path):
  for arch in ("infini", "xl"):
    module = load_config("pg19", arch)
    cfg = module.get_config("paper")
    cfg.unlock()
    cfg.train.compile_only = True
    cfg.lock()
    result = train.train_and_evaluate(cfg, str(tmp_path / arch))
    # 12 x (4 x 1024^2 + 3 x 1024 x 4096) + 2 x 32000 x 1024 (+ norms and gates): ~267.5M.
    assert result["compiled"] and 2.66e8 < result["parameters"] < 2.69e8
