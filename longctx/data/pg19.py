"""PG19 (Rae et al. 2019, Project Gutenberg books before 1919) through tensorflow-datasets, without
TensorFlow at training time: `tfds.data_source('pg19', split=...)` reads the prepared ArrayRecord
files with random access (numpy in, numpy out), and longctx.data.text streams each book through its
own batch slot.

Preparing the data is a one-off on a host that can reach gs://deepmind-gutenberg; tfds's pg19 builder
reads that bucket with tf.io.gfile, so this step (only) needs TensorFlow:
  pip install tensorflow tensorflow-datasets
  tfds build pg19 --file_format=array_record --data_dir=$DATA
Training then needs only `pip install 'longctx[data]'` and data.tfds_data_dir=$DATA. Splits: train
(28,602 books), validation (50), test (100). Each example has book_text (the whole book), book_id,
book_title, publication_date, book_link; tfds returns the text as bytes or str, both are accepted.
"""
from longctx.data.text import DocumentCorpus, tokenize_document

TFDS_NAME = "pg19"


def import_tfds():
  try:
    import tensorflow_datasets as tfds
  except ImportError:
    raise ValueError("reading tfds datasets needs tensorflow-datasets (no TensorFlow needed): "
                     "pip install 'longctx[data]'") from None
  return tfds


def tfds_source(name: str, split: str, data_dir: str = ""):
  """tfds.data_source without download (prepare first, see the module docstring)."""
  tfds = import_tfds()
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir or None, download=False)
  except Exception as e:  # tfds raises several types (AssertionError, FileNotFoundError, ...)
    raise ValueError(f"tfds dataset {name!r} split {split!r} (data_dir={data_dir or 'default'}) "
                     f"cannot be opened: {e}. Prepare it with `tfds build {name.split('/')[0]} "
                     "--file_format=array_record` (see longctx/data/pg19.py)") from None


def pg19_corpus(split: str, tokenizer, data_dir: str = "") -> DocumentCorpus:
  """The books of a PG19 split as a DocumentCorpus (books are read and tokenized on demand)."""
  source = tfds_source(TFDS_NAME, split, data_dir)

  def name(i):
    return f"pg19 {split} example {i}"

  def load(i):
    example = source[i]
    return tokenize_document(tokenizer, example["book_text"],
                             f"{name(i)} (book_id {example.get('book_id', '?')})")
  return DocumentCorpus(size=len(source), load=load, name=name,
                        description=f"pg19 split {split!r} ({len(source)} books)")


def pg19_texts(split: str, data_dir: str = "", limit: int = 0):
  """(name, text) of the first `limit` books of a split (all with limit 0), for evaluation."""
  source = tfds_source(TFDS_NAME, split, data_dir)
  count = len(source) if limit <= 0 else min(limit, len(source))
  return [(f"pg19 {split} example {i}", source[i]["book_text"]) for i in range(count)]
