"""Infini-attention summarisation on BookSum (Infini-attention arXiv 2404.07143, Table 4: Linear
R-1/R-2/R-L/overall 37.9/8.7/17.6/18.0, Linear+Delta 40.0/8.8/17.9/18.5 at 500K-token input).

  python -m longctx.main --config=configs/booksum/infini.py:cpu --workdir=runs/booksum_infini
  python -m longctx.main --config=configs/booksum/infini.py:paper --workdir=/tmp/p --config.train.compile_only=True

Presets:
  smoke  tiny byte model on a local JSONL file of {"document", "summary"} lines (path=FILE; tests
         write one), greedy decoding of a few tokens
  cpu    a small byte model fine-tuned on a local JSONL file (path=FILE, e.g. made from any
         document/summary pairs you have), at most 30 minutes on 2 cores
  paper  Table 4's setup (papers.md 3(b)): the 8B model is unnamed, so this is the shape only
         (Infini's 8B continual pre-training is not reproduced): fine-tune at 32K input on
         tfds booksum/book, evaluate at 500K input with temperature 0.5, top-p 0.95 and 1024
         decoding steps. Build/compile only here. Decision: an 8B Llama-like shape (32 layers,
         d_model 4096, 32 heads x 128, SwiGLU 14336) with a 32K SentencePiece vocabulary.
Arguments: `<preset>[,path=FILE][,eval_path=FILE]`.
"""
from longctx import config as config_lib


def get_config(arg="cpu"):
  a = config_lib.parse_arg(arg, preset="cpu", path="data/booksum_local/train.jsonl",
                           eval_path="")
  cfg = config_lib.base_config()
  cfg.model.attention = "infini"
  cfg.data.update(task="booksum", source="local", path=a.path, split="train")
  cfg.evals.run = ("booksum",)
  cfg.evals.booksum.update(source="local", path=a.eval_path or a.path)
  if a.preset == "smoke":
    cfg.model.update(d_model=32, num_heads=2, num_layers=1, mlp_dim=64, block_len=16,
                     remat_policy="none")
    cfg.data.update(seq_len=128, batch_size=2)
    cfg.train.update(steps=3, lr=3e-3, warmup_steps=1, log_every=1)
    cfg.checkpoint.update(every_steps=2, keep=2, async_save=False)
    cfg.evals.booksum.update(max_examples=2, max_new_tokens=8, temperature=0.0, chunk_blocks=2)
  elif a.preset == "cpu":
    cfg.model.update(d_model=128, num_heads=4, num_layers=2, mlp_dim=512, block_len=128,
                     remat_policy="none")
    cfg.data.update(seq_len=2048, batch_size=4)
    cfg.train.update(steps=300, lr=2e-3, warmup_steps=30, log_every=25, time_limit_minutes=20.0)
    cfg.checkpoint.update(every_steps=100, keep=1)
    cfg.evals.booksum.update(max_examples=8, max_new_tokens=256, chunk_blocks=16)
  elif a.preset == "paper":
    cfg.model.update(d_model=4096, num_heads=32, num_layers=32, mlp_dim=14336, block_len=2048,
                     vocab_size=32000, dtype="bfloat16")
    cfg.data.update(source="booksum", booksum_config="book", seq_len=32768, batch_size=64,
                    tokenizer="sentencepiece", tokenizer_path="booksum_sp32k.model")
    # Infini: LR 1e-4 for continual pre-training and fine-tuning; steps not stated.
    cfg.train.update(steps=2000, optimizer="adafactor", lr=1e-4, warmup_steps=100, b1=0.0)
    cfg.checkpoint.update(every_steps=500, keep=2)
    cfg.evals.booksum.update(source="booksum", split="test", max_input_tokens=500_000,
                             max_new_tokens=1024, temperature=0.5, top_p=0.95, chunk_blocks=4)
  else:
    raise ValueError(f"unknown preset {a.preset!r}: expected smoke, cpu or paper")
  return config_lib.finalize(cfg)
