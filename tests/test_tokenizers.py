"""The byte tokenizer: exact round trips (the passkey generator's exact lengths rely on them)."""
import numpy as np
import pytest

from longctx.data.tokenizers import ByteTokenizer, Tokenizer, make_tokenizer


def test_round_trip_ascii_and_unicode():
  tok = ByteTokenizer()
  for text in ["", "The pass key is 9054.", "héllo wörld ✓ 日本"]:
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert len(ids) == len(text.encode("utf-8"))
    assert tok.decode(ids) == text


def test_encode_bytes_and_vocab():
  tok = ByteTokenizer()
  assert tok.vocab_size == 256
  ids = tok.encode(bytes(range(256)))
  np.testing.assert_array_equal(ids, np.arange(256, dtype=np.int32))
  assert ids.min() >= 0 and ids.max() < tok.vocab_size


def test_decode_invalid_utf8_is_replaced_not_raised():
  tok = ByteTokenizer()
  cut = tok.encode("✓")[:2]            # a 3-byte character cut in the middle
  assert tok.decode(cut) == "\ufffd"
  assert tok.decode([0x41, 0xFF, 0x42]) == "A\ufffdB"


@pytest.mark.parametrize("ids, match", [([256], r"\[0, 256\)"), ([-1], r"\[0, 256\)"),
                                        ([[1, 2]], "1-D"), ([1.5], "integer")])
def test_decode_rejects_bad_ids(ids, match):
  with pytest.raises(ValueError, match=match):
    ByteTokenizer().decode(ids)


def test_encode_rejects_other_types():
  with pytest.raises(ValueError, match="str or bytes"):
    ByteTokenizer().encode(123)


def test_make_tokenizer():
  tok = make_tokenizer("bytes")
  assert isinstance(tok, ByteTokenizer) and isinstance(tok, Tokenizer)
  with pytest.raises(ValueError, match=r"'wordpiece' is not one of \('bytes', 'sentencepiece'\)"):
    make_tokenizer("wordpiece")
