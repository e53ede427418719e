"""BookSum: example layout and loss mask (hand-worked), tfds mock data, ROUGE on a hand-checked pair,
and the evaluator's decoding at temperature 0 is deterministic."""
import json
import os

import numpy as np
import pytest

from longctx.data import booksum
from longctx.data.tokenizers import ByteTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_example_layout_and_loss_mask():
  tok = ByteTokenizer()
  sep = len(booksum.SEPARATOR.encode())                       # 11 bytes
  ex = booksum.training_example(tok, "abcdefghij", "xyz", seq_len=40)
  prompt = b"abcdefghij" + booksum.SEPARATOR.encode()
  assert ex.prompt_len == 10 + sep and ex.target_len == 4 and not ex.truncated
  np.testing.assert_array_equal(ex.tokens[:25], list(prompt + b"xyz\x00"))   # NUL = end of text
  np.testing.assert_array_equal(ex.tokens[25:], 0)
  # weights[i] scores tokens[i + 1]: exactly the summary and its end token.
  expected = np.zeros(40)
  expected[20:24] = 1.0
  np.testing.assert_array_equal(ex.weights, expected)
  weighted = booksum.training_example(tok, "abcdefghij", "xyz", seq_len=40, prompt_weight=0.25)
  np.testing.assert_array_equal(weighted.weights[:20], 0.25)
  np.testing.assert_array_equal(weighted.weights[24:], 0.0)   # padding never counts


def test_long_documents_keep_their_start_and_the_cut_is_reported():
  tok = ByteTokenizer()
  ex = booksum.training_example(tok, "abcdefghij", "xyz", seq_len=20)   # 21 tokens in all
  assert ex.truncated and ex.prompt_len == 6 + 11 and ex.target_len == 4
  np.testing.assert_array_equal(ex.tokens[:6], list(b"abcdef"))
  np.testing.assert_array_equal(ex.tokens[-4:], list(b"xyz\x00"))
  long_summary = booksum.training_example(tok, "abcdefghij" * 5, "s" * 100, seq_len=40)
  # The prompt keeps max(separator + 1, 41 // 4) = 12 tokens; the summary + end token the other 29.
  assert long_summary.truncated and long_summary.prompt_len == 12 and long_summary.target_len == 29
  np.testing.assert_array_equal(long_summary.tokens[:12], list(b"a" + booksum.SEPARATOR.encode()))


@pytest.mark.parametrize("document, summary, message", [
    ("text with \x00 inside", "s", "NUL"), ("", "s", "empty document"), ("d", "", "empty summary"),
    (b"\xff\xfe", "s", "not valid UTF-8")])
def test_bad_examples_are_errors(document, summary, message):
  with pytest.raises(ValueError, match=message):
    booksum.training_example(ByteTokenizer(), document, summary, seq_len=64)


def test_rouge_on_a_hand_checked_pair():
  pytest.importorskip("rouge_score")
  # Unigrams: 5 of 6 shared (P = R = 5/6); bigrams: "the cat", "on the", "the mat" of 5 each (3/5);
  # LCS "the cat on the mat" = 5 of 6.
  scores = booksum.rouge_scores("the cat sat on the mat", "the cat is on the mat")
  np.testing.assert_allclose(scores["rouge1"], 500 / 6)
  np.testing.assert_allclose(scores["rouge2"], 60.0)
  np.testing.assert_allclose(scores["rougeL"], 500 / 6)
  np.testing.assert_allclose(scores["overall"], (500 / 6 * 60 * 500 / 6) ** (1 / 3))
  # Infini Table 4's Overall is the geometric mean: BART 36.4 / 7.6 / 15.3 -> 16.2.
  assert round(booksum.geometric_mean([36.4, 7.6, 15.3]), 1) == 16.2


def test_booksum_source_through_tfds_mock_is_a_pure_function_of_the_step():
  tfds = pytest.importorskip("tensorflow_datasets")
  import ml_collections
  pairs = [{"document": f"document number {i} " * (i + 1), "summary": f"summary {i}".encode()}
           for i in range(5)]

  def as_data_source(self, split, **kwargs):
    del self, kwargs
    return pairs
  cfg = ml_collections.ConfigDict(dict(batch_size=2, seq_len=64, seed=0, booksum_prompt_weight=0.0))
  with tfds.testing.mock_data(as_data_source_fn=as_data_source):
    examples = booksum.summary_pairs("tfds", tfds_name="booksum/book", split="train")
    source = booksum.BookSumSource(cfg, ByteTokenizer(), examples)
    first = [source.batch(s) for s in range(4)]
    again = booksum.BookSumSource(cfg, ByteTokenizer(), examples).batch(3)
  for key in first[3]:
    np.testing.assert_array_equal(first[3][key], again[key])
  assert all(b["reset"].all() for b in first)
  # The first epoch (steps 0-1 and half of 2) uses each example once.
  summaries = {bytes(np.asarray(r[(w > 0)], np.uint8)).split(b"\x00")[0]
               for b in first[:3] for r, w in zip(b["targets"], b["weights"])}
  assert {f"summary {i}".encode() for i in range(5)} <= summaries


def test_booksum_evaluator_decodes_deterministically_at_temperature_zero(tmp_path):
  pytest.importorskip("rouge_score")
  from longctx import evaluate_text, train
  path = tmp_path / "pairs.jsonl"
  with open(path, "w") as f:
    for i in range(3):
      f.write(json.dumps({"document": f"A long story number {i}. " * 8,
                          "summary": f"Story {i}."}) + "\n")
  import importlib.util
  spec = importlib.util.spec_from_file_location(
      "booksum_infini_config", os.path.join(ROOT, "configs", "booksum", "infini.py"))
  booksum_config = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(booksum_config)
  cfg = booksum_config.get_config(f"smoke,path={path}")
  graphdef, params, _ = train.build_model(cfg)
  a = evaluate_text.evaluate_booksum(cfg, graphdef, params, str(tmp_path))
  b = evaluate_text.evaluate_booksum(cfg, graphdef, params, str(tmp_path))
  assert a["examples"] == 2 and [r["prediction"] for r in a["per_example"]] == \
      [r["prediction"] for r in b["per_example"]]
  assert all(r["generated_tokens"] <= 8 for r in a["per_example"])
  saved = json.load(open(tmp_path / "booksum.json"))
  assert set(booksum.ROUGE_TYPES) <= set(saved) and "overall" in saved
