"""Shared presets of the PG19 / local-text language-modelling configs (configs/pg19/<arch>.py).

Presets:
  smoke  tiny byte model on a local folder of .txt files (seconds; tests point it at a temporary corpus)
  cpu    a real run of <= 30 minutes on 2 CPU cores on a local corpus (default data/vimdoc/{train,
         heldout}: `python scripts/make_text_corpus.py` builds it from /usr/share/vim's help files)
  paper  Infini-attention Table 2's setup (papers.md 3(b)): 12 layers, 8 heads x 128 (d_model 1024),
         SwiGLU 4096, segment 2048, 32K training length (16 segments), Adafactor lr 0.01, 1000 warmup
         steps then cosine, batch 64, PG19 through tfds; build/compile only here.
Arguments: `<preset>[,path=FOLDER][,heldout=FOLDER]` override the local corpus folders.
"""
from longctx import config as config_lib

DEFAULT_TRAIN = "data/vimdoc/train"
DEFAULT_HELDOUT = "data/vimdoc/heldout"


def text_arg(arg: str):
  """The parsed config argument: .preset, .path, .heldout."""
  return config_lib.parse_arg(arg, preset="cpu", path="", heldout="")


def text_config(attention: str, arg: str, **model_overrides):
  a = text_arg(arg)
  cfg = config_lib.base_config()
  cfg.model.attention = attention
  cfg.data.update(task="text", source="local", path=a.path or DEFAULT_TRAIN, split="train")
  cfg.evals.run = ("lm",)
  cfg.evals.lm.update(source="local", path=a.heldout or DEFAULT_HELDOUT)
  if a.preset == "smoke":
    cfg.model.update(d_model=32, num_heads=2, num_layers=1, mlp_dim=64, block_len=16,
                     remat_policy="none")
    cfg.data.update(seq_len=64, batch_size=2)
    cfg.train.update(steps=4, lr=3e-3, warmup_steps=1, log_every=1)
    cfg.checkpoint.update(every_steps=2, keep=2, async_save=False)
    cfg.evals.lm.update(max_tokens=256, chunk_blocks=4)
  elif a.preset == "cpu":
    # A 2-layer d128 byte model on 1K-token sequences of 8 blocks of 128; documents stream across
    # steps, so the memory spans whole documents (tens of thousands of bytes).
    cfg.model.update(d_model=128, num_heads=4, num_layers=2, mlp_dim=512, block_len=128,
                     remat_policy="none")
    cfg.data.update(seq_len=1024, batch_size=8)
    cfg.train.update(steps=400, lr=2e-3, warmup_steps=40, log_every=25, time_limit_minutes=25.0)
    cfg.checkpoint.update(every_steps=200, keep=1)
    cfg.evals.lm.update(max_tokens=32768, chunk_blocks=32)
  elif a.preset == "paper":
    # Infini Table 2. Not stated by the paper (papers.md 3(b)): the tokenizer and step count; we take
    # Memorizing Transformers' (whose setup Table 2 mirrors): a 32K SentencePiece vocabulary and 500K
    # steps. data.tokenizer_path must point at that model (scripts/train_tokenizer.py trains one).
    cfg.model.update(d_model=1024, num_heads=8, num_layers=12, mlp_dim=4096, block_len=2048,
                     vocab_size=32000, dtype="bfloat16")
    cfg.data.update(source="pg19", seq_len=32768, batch_size=64, tokenizer="sentencepiece",
                    tokenizer_path="pg19_sp32k.model")
    cfg.train.update(steps=500_000, optimizer="adafactor", lr=0.01, warmup_steps=1000, b1=0.0,
                     min_lr_ratio=0.0, log_every=100)
    cfg.checkpoint.update(every_steps=2000, keep=3)
    cfg.evals.lm.update(source="pg19", split="test", chunk_blocks=8)
  else:
    raise ValueError(f"unknown preset {a.preset!r}: expected smoke, cpu or paper")
  cfg.model.update(model_overrides)
  return cfg
