"""infinity-former language model (infinity-former arXiv 2109.00301, Sec. 4.2-4.3: WikiText-103 from
scratch, inf-former w/ sticky memories test ppl 24.22; GPT-2 small fine-tuned on PG19, 32.48).

  python -m longctx.main --config=configs/lm/infinity_former.py:cpu --workdir=runs/lm_inftyformer
  python -m longctx.main --config=configs/lm/infinity_former.py:paper,path=DIR,heldout=DIR,tokenizer=FILE \
      --workdir=/tmp/lm --config.train.compile_only=True

Presets smoke | cpu | paper (configs/lm/common.py: the text task on a local corpus). `sticky=False`
turns sticky memories off (the paper's "w/o SM" row).
Paper preset: the shape of the official GPT-2 config (12 layers, d 768, 12 heads, SwiGLU 3072
instead of GPT-2's GELU MLP, block = STM = 512) with its long-term memory (512 basis functions of
widths 0.005 / 0.01, ridge lambda 0.5, tau 0.5, sticky memories over 128 bins), trained from scratch:
no GPT-2 weights are loaded here. Not given by the paper for this setup, our choices: AdamW 2.5e-4,
1000 warmup steps, cosine, 2048-token training sequences (the official code resets the memory every
2048 tokens; here memory runs over whole documents, as the text task streams them).
"""
from longctx import config as config_lib

lm_config = config_lib.load_common(__file__).lm_config


def get_config(arg="cpu"):
  cfg, a = lm_config("infinity_former", arg,
                     dict(d_model=768, num_heads=12, num_layers=12, mlp_dim=3072, block_len=512),
                     dict(steps=100_000, lr=2.5e-4, warmup_steps=1000, min_lr_ratio=0.0),
                     sticky=True)
  inf = cfg.model.infinity_former
  inf.update(stm_blocks=1, ridge_lambda=0.5, tau=0.5, sticky=bool(a.sticky))
  if a.preset == "smoke":
    inf.update(num_basis=16, basis_widths=(0.05, 0.1), num_samples=16, num_bins=8)
  elif a.preset == "cpu":
    inf.update(num_basis=128, basis_widths=(0.01, 0.05), num_samples=128, num_bins=64)
  else:
    inf.update(num_basis=512, basis_widths=(0.005, 0.01), num_samples=512, num_bins=128)
    cfg.data.update(seq_len=2048, batch_size=8)
  return config_lib.finalize(cfg)
