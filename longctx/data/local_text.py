"""A local text corpus: every `.txt` file under a folder (searched recursively, sorted by relative
path) is one document, streamed by longctx.data.text.

Checks, all done when the corpus is opened so that a bad file stops a run before training starts
(never silently skipped): a missing folder, a folder without .txt files, an empty file, a file that
is not valid UTF-8 (the error names the byte offset), and a file with fewer than 2 tokens (nothing
to predict) each raise one ValueError naming the path. A UTF-8 byte-order mark is kept as text.
Documents are read again and tokenized when a slot takes them, so a corpus larger than memory works.
"""
import os


from longctx.data.text import DocumentCorpus, tokenize_document


def list_text_files(folder: str) -> list:
  """Sorted paths of the .txt files under `folder` (recursively)."""
  folder = os.fspath(folder)
  if not folder:
    raise ValueError("data.path is empty: set it to a folder of .txt files (one document each)")
  if not os.path.isdir(folder):
    raise ValueError(f"{folder}: no such folder (expected a folder of .txt files, one document each)")
  found = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".txt"))
  if not found:
    raise ValueError(f"{folder}: no .txt files (each .txt file under the folder is one document)")
  return sorted(found, key=lambda p: os.path.relpath(p, folder))


def read_text_file(path: str) -> str:
  """A file's text; an empty or non-UTF-8 file raises a ValueError naming it."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None
  if not data:
    raise ValueError(f"{path}: the file is empty (every .txt file is a document; remove it)")
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start}); convert it, e.g. "
                     f"iconv -f latin1 -t utf-8") from None


def local_corpus(folder: str, tokenizer) -> DocumentCorpus:
  """Opens and checks every document of `folder`; returns a DocumentCorpus."""
  paths = list_text_files(folder)
  lengths = [len(tokenize_document(tokenizer, read_text_file(p), p)) for p in paths]
  del lengths   # checked here; lengths are recomputed lazily by the stream
  return DocumentCorpus(
      size=len(paths),
      load=lambda i: tokenize_document(tokenizer, read_text_file(paths[i]), paths[i]),
      name=lambda i: paths[i],
      description=f"local text folder {folder} ({len(paths)} documents)")


def local_texts(folder: str):
  """(path, text) of every document, for evaluation."""
  return [(p, read_text_file(p)) for p in list_text_files(folder)]
