"""Document streaming (longctx.data.text), local corpora and PG19 through tfds's mock data.

References: a hand-worked slot schedule for a 4-document corpus, the documents themselves (every
token after the first is a target exactly once), and a single uninterrupted pass over a document
(streaming it across training steps with the carried memory must give the same losses)."""
import os

import numpy as np
import pytest

from longctx.data import local_text
from longctx.data.text import DocumentCorpus, DocumentStream, tokenize_document
from longctx.data.tokenizers import ByteTokenizer


def corpus_of(docs):
  docs = [np.asarray(d, np.int32) for d in docs]
  return DocumentCorpus(size=len(docs), load=lambda i: docs[i], name=lambda i: f"doc{i}")


def docs_of_lengths(lengths):
  # Distinct token values per document so a mix-up is visible: doc i has tokens 100 * i + position.
  return [100 * i + np.arange(n) for i, n in enumerate(lengths)]


def test_slot_schedule_matches_a_hand_worked_example():
  # Lengths 5, 2, 9, 3 (4, 1, 8, 2 targets), T = 3, B = 2, corpus order. Worked by hand:
  # step 0: slot0 doc0@0 (3 targets), slot1 doc1@0 (1) -> doc1 done, slot1 takes doc2
  # step 1: slot0 doc0@3 (1), slot1 doc2@0 (3)         -> doc0 done, slot0 takes doc3
  # step 2: slot0 doc3@0 (2), slot1 doc2@3 (3)         -> doc3 done, slot0 takes doc0 (epoch 1)
  # step 3: slot0 doc0@0 (3), slot1 doc2@6 (2)
  expected = [[(0, 0, 3), (1, 0, 1)], [(0, 3, 1), (2, 0, 3)], [(3, 0, 2), (2, 3, 3)],
              [(0, 0, 3), (2, 6, 2)]]
  docs = docs_of_lengths([5, 2, 9, 3])
  stream = DocumentStream(corpus_of(docs), batch_size=2, seq_len=3, shuffle=False)
  for step, rows in enumerate(expected):
    batch = stream.batch(step)
    for slot, (doc, offset, n) in enumerate(rows):
      tokens = docs[doc]
      np.testing.assert_array_equal(batch["weights"][slot], [1.0] * n + [0.0] * (3 - n))
      np.testing.assert_array_equal(batch["inputs"][slot, :n], tokens[offset:offset + n])
      np.testing.assert_array_equal(batch["targets"][slot, :n], tokens[offset + 1:offset + n + 1])
      np.testing.assert_array_equal(batch["inputs"][slot, n:], 0)   # padded tail, weight 0
      np.testing.assert_array_equal(batch["positions"][slot], np.arange(offset, offset + 3))
      assert batch["reset"][slot] == (offset == 0)


def test_every_token_after_the_first_is_a_target_exactly_once():
  rng = np.random.default_rng(0)
  lengths = rng.integers(2, 40, size=11)
  docs = docs_of_lengths(lengths)
  stream = DocumentStream(corpus_of(docs), batch_size=3, seq_len=8, seed=5)
  seen = {}
  for step in range(40):
    batch = stream.batch(step)
    for slot in range(3):
      w = batch["weights"][slot] > 0
      for target, pos in zip(batch["targets"][slot][w], batch["positions"][slot][w]):
        doc = int(target) // 100
        seen.setdefault(doc, []).append((int(pos) + 1, int(target)))
  # The first epoch's documents are complete (40 steps x 3 slots x 8 covers > 1 epoch).
  order = stream.doc_at
  first_epoch = {order(k) for k in range(len(docs))}
  assert first_epoch == set(range(len(docs)))
  for doc, pairs in seen.items():
    # Epochs repeat a document; its first pass is its first len - 1 targets.
    first = pairs[:lengths[doc] - 1]
    assert [p for p, _ in first] == list(range(1, lengths[doc]))
    np.testing.assert_array_equal([t for _, t in first], docs[doc][1:])


@pytest.mark.parametrize("shuffle", [True, False])
def test_resume_mid_document_gives_the_same_next_batches(shuffle):
  docs = docs_of_lengths([50, 7, 31, 90, 12, 64, 5])
  make = lambda: DocumentStream(corpus_of(docs), batch_size=2, seq_len=8, seed=3, shuffle=shuffle)
  reference = make()
  batches = [reference.batch(s) for s in range(30)]
  interrupted = make()
  for s in range(13):
    interrupted.batch(s)
  saved = interrupted.position(13)
  assert any(offset > 0 for _, offset in saved["slots"])      # really mid-document
  restored = make()
  restored.restore(saved)                                      # resume from the saved position
  replayed = make()                                            # or recompute from the step alone
  for s in range(13, 30):
    for other in (restored, replayed):
      got = other.batch(s)
      for key in batches[s]:
        np.testing.assert_array_equal(got[key], batches[s][key], err_msg=f"{key} at step {s}")
  with pytest.raises(ValueError, match="seq_len"):
    DocumentStream(corpus_of(docs), batch_size=2, seq_len=16, seed=3, shuffle=shuffle).restore(saved)


def test_epochs_are_reshuffled_deterministically():
  docs = docs_of_lengths([3] * 20)
  a = DocumentStream(corpus_of(docs), batch_size=1, seq_len=4, seed=1)
  b = DocumentStream(corpus_of(docs), batch_size=1, seq_len=4, seed=1)
  order_a = [a.doc_at(k) for k in range(40)]
  assert order_a == [b.doc_at(k) for k in range(40)]
  assert sorted(order_a[:20]) == list(range(20)) and order_a[:20] != order_a[20:]


def test_bytes_and_str_documents_tokenize_the_same():
  tok = ByteTokenizer()
  text = "Über den Wolken ✓"
  np.testing.assert_array_equal(tokenize_document(tok, text, "a"),
                                tokenize_document(tok, text.encode("utf-8"), "b"))
  np.testing.assert_array_equal(tokenize_document(tok, np.array(text.encode()), "c"),
                                tok.encode(text))
  with pytest.raises(ValueError, match="bad: not valid UTF-8"):
    tokenize_document(tok, b"ab\xff", "bad")
  with pytest.raises(ValueError, match="tiny: 1 token"):
    tokenize_document(tok, "x", "tiny")


def _write(path, data: bytes):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(data)


def test_local_corpus_reads_every_txt_file_in_order(tmp_path):
  _write(tmp_path / "b.txt", b"second document")
  _write(tmp_path / "a.txt", "first document \u2713".encode())
  _write(tmp_path / "sub" / "c.txt", b"third")
  _write(tmp_path / "notes.md", b"not a .txt file")
  corpus = local_text.local_corpus(str(tmp_path), ByteTokenizer())
  assert len(corpus) == 3
  assert [os.path.relpath(corpus.name(i), tmp_path) for i in range(3)] == ["a.txt", "b.txt",
                                                                          "sub/c.txt"]
  assert ByteTokenizer().decode(corpus.load(0)) == "first document \u2713"


@pytest.mark.parametrize("name, data, message", [
    ("empty.txt", b"", "empty.txt: the file is empty"),
    ("latin1.txt", "caf\xe9".encode("latin-1"), "latin1.txt: not valid UTF-8 .* at byte 3"),
    ("tiny.txt", b"x", "tiny.txt: 1 token"),
])
def test_bad_local_files_are_errors_naming_the_file(tmp_path, name, data, message):
  _write(tmp_path / "good.txt", b"a good document")
  _write(tmp_path / name, data)
  with pytest.raises(ValueError, match=message):
    local_text.local_corpus(str(tmp_path), ByteTokenizer())


def test_missing_or_empty_folders_are_errors(tmp_path):
  with pytest.raises(ValueError, match="no such folder"):
    local_text.local_corpus(str(tmp_path / "nope"), ByteTokenizer())
  with pytest.raises(ValueError, match="no .txt files"):
    local_text.local_corpus(str(tmp_path), ByteTokenizer())


def test_pg19_through_tfds_mock_data_streams_books_with_start_flags():
  tfds = pytest.importorskip("tensorflow_datasets")
  from longctx.data import pg19
  books = [{"book_id": np.int32(7), "book_text": "A short book about memory."},
           {"book_id": np.int32(8), "book_text": "Another book, given as bytes \u2713.".encode()},
           {"book_id": np.int32(9), "book_text": "x" * 40}]

  def as_data_source(self, split, **kwargs):
    del self, kwargs
    assert split == "validation"
    return books
  tok = ByteTokenizer()
  with tfds.testing.mock_data(as_data_source_fn=as_data_source):
    corpus = pg19.pg19_corpus("validation", tok)
    stream = DocumentStream(corpus, batch_size=2, seq_len=16, shuffle=False, source="pg19")
    batches = [stream.batch(s) for s in range(4)]
  expected = [tok.encode(b["book_text"]) for b in books]
  # Slot 0: book 0 (26 tokens: sequences at 0 and 16), then book 2 at step 2.
  np.testing.assert_array_equal(batches[0]["inputs"][0], expected[0][:16])
  np.testing.assert_array_equal(batches[1]["targets"][0, :9], expected[0][17:26])
  assert [bool(b["reset"][0]) for b in batches] == [True, False, True, False]
  np.testing.assert_array_equal(batches[2]["inputs"][0], expected[2][:16])
  # Slot 1: book 1 (bytes input) from the start.
  np.testing.assert_array_equal(batches[0]["inputs"][1], expected[1][:16])
  assert batches[0]["reset"][1] and not batches[1]["reset"][1]


def test_pg19_default_mock_data_runs_without_tensorflow():
  tfds = pytest.importorskip("tensorflow_datasets")
  import importlib.util
  import sys
  from longctx.data import pg19
  with tfds.testing.mock_data(num_examples=4):
    corpus = pg19.pg19_corpus("train", ByteTokenizer())
    assert len(corpus) == 4
    batch = DocumentStream(corpus, batch_size=2, seq_len=8).batch(0)
  assert batch["reset"].all() and batch["weights"].sum() > 0
  if importlib.util.find_spec("tensorflow") is None:
    assert "tensorflow" not in sys.modules
