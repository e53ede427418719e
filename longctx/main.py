"""Entry point: python -m longctx.main --config=configs/<task>/<arch>.py:<preset> --workdir=DIR

Writes the resolved config to DIR, trains (resuming from DIR's checkpoints when present), then runs
the configured evaluators. Overrides: --config.train.steps=100 (unknown keys fail: configs are locked).
"""
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/passkey/infini.py:cpu",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries:
  """Drops INFO records from orbax/tensorstore internals (several lines per save) from the console."""

  def filter(self, record):
    return record.levelno > 20 or not any(s in record.pathname for s in ("/orbax/", "/etils/"))


def main(argv):
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # Imported after flag parsing so --help and flag errors stay fast.
  from longctx import config as config_lib
  from longctx import train
  cfg = _CONFIG.value
  try:
    config_lib.validate(cfg)  # overrides happen after get_config: check again
    logging.info("Config:\n%s", cfg)
    train.train_and_evaluate(cfg, _WORKDIR.value)
  except (ValueError, FileNotFoundError, train.TrainingDiverged) as e:
    # Errors a user can cause: one clear line, no traceback.
    logging.error("%s", e)
    sys.exit(f"longctx: {e}")


def _config_args(argv):
  """(name, value) of every --config / --config.* argument, in the '--name=value' and the
  '--name value' forms (value None for a trailing '--name')."""
  out, i = [], 1
  while i < len(argv):
    arg = argv[i]
    if arg == "--config" or arg.startswith(("--config=", "--config.")):
      name, eq, value = arg.partition("=")
      if not eq:
        value = argv[i + 1] if i + 1 < len(argv) else None
        i += 1
      out.append((name, value))
    i += 1
  return out


def _parse_flags(argv):
  """absl's parser, but a missing config file, an unknown/mistyped override or an override given
  twice gives one line."""
  seen = set()
  for name, value in _config_args(argv):
    if name.startswith("--config."):
      # ml_collections applies a repeated override in sequence, and for a tuple field it
      # CONCATENATES ('--config.x=(1,2)' then '--config.x=(3,)' gives (1, 2, 3)): refuse it.
      field = name[len("--config."):]
      if field in seen:
        sys.exit(f"longctx: --config.{field} is given twice; give each override once")
      seen.add(field)
    elif value is not None:
      path = value.split(":", 1)[0]
      if not os.path.isfile(path) or not os.access(path, os.R_OK):
        sys.exit(f"longctx: config file {path!r} does not exist or is not readable "
                 f"(--config=<file.py>:<preset>, relative to {os.getcwd()})")
  try:
    rest = flags.FLAGS(argv)
    _CONFIG.value  # noqa: B018  (loads the file and applies the overrides)
    return rest
  except flags.Error as e:
    sys.exit(f"longctx: {e}")
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    msg = str(e).replace("\\'", "'").strip("'\"").replace("\\n", " ").replace("\n", " ")
    sys.exit(f"longctx: bad --config or --config.* override: {msg}")


def run():
  sys.path.insert(0, os.getcwd())
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  run()
