"""Checkpointing: the only module that talks to orbax (v0 CheckpointManager API).

One checkpoint step holds two items: `state`, a pytree of jax arrays (params, optimizer state, raw
uint32 RNG key data, step, memory carried across steps), and `meta`, a JSON dict (data position,
model shape summary). Hiding orbax here means a move to the orbax v1 API touches one file.

Loop pattern:
  install_sigterm_handler()
  with Checkpointer(workdir / "ckpt", save_interval_steps=1000) as ckpt:
    if ckpt.latest_step() is not None:
      state, meta = ckpt.restore(None, jax.eval_shape(init_fn))
    for step in ...:
      ...
      ckpt.save(step, state, meta)              # orbax decides: interval, first save, preemption
      if ckpt.should_stop(step):
        ckpt.save(step, state, meta, force=True)
        break
  # leaving the `with` waits for the background save and raises if it failed.
"""
import json
import logging
import os
import signal
import threading

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

_STOP = threading.Event()


def install_sigterm_handler():
  """Turns SIGTERM into a flag so the loop can save and exit cleanly; returns the old handler.

  Clears the flag. A previous Python-level handler is still called. On multi-process runs it
  installs nothing (returns None): JAX's own preemption notifier owns SIGTERM there and
  `Checkpointer.should_stop` sees it through orbax's `reached_preemption`, which all hosts agree on.
  """
  if jax.process_count() > 1:
    logging.info("multi-process run: relying on JAX's preemption service, not a SIGTERM handler")
    return None
  _STOP.clear()
  previous = signal.getsignal(signal.SIGTERM)

  def handler(signum, frame):
    logging.warning("SIGTERM received: will save and stop after this step")
    _STOP.set()
    if callable(previous):
      previous(signum, frame)

  signal.signal(signal.SIGTERM, handler)
  return previous


def should_stop() -> bool:
  """Whether SIGTERM has arrived since `install_sigterm_handler` (host-local; see
  `Checkpointer.should_stop(step)` for the version that also sees multi-host preemption)."""
  return _STOP.is_set()


def path_str(path) -> str:
  """A key path as 'a/b/0/c', the same for dicts, lists, tuples, namedtuples and nnx.State.

  Needed because orbax's metadata tree turns namedtuple fields and nnx Variable `.value` into dict
  keys and tuples into lists, so raw jax key paths of the two trees differ.
  """
  parts = []
  for k in path:
    for attr in ("key", "idx", "name"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return "/".join(parts)


def flat_leaves(tree) -> dict:
  return {path_str(p): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _item_differs(stored, abstract_state, key: str) -> bool:
  """Whether item `key` of the stored metadata tree differs from abstract_state[key] in paths or
  shapes. No metadata (not a dict) counts as no difference: the full restore's checks decide."""
  if not isinstance(stored, dict):
    return False
  if key not in stored:
    return True
  saved, want = flat_leaves(stored[key]), flat_leaves(abstract_state[key])
  return saved.keys() != want.keys() or any(
      tuple(saved[k].shape) != tuple(x.shape) for k, x in want.items())


class Checkpointer:
  """A CheckpointManager with items `state` (StandardSave) and `meta` (JsonSave).

  Saves are asynchronous: `save` returns once arrays are copied off the device; `wait` (also run by
  `close` and on leaving a `with` block) blocks until the write is committed and raises if it failed.
  """

  def __init__(self, directory, *, save_interval_steps: int = 1, max_to_keep: int | None = 3,
               async_save: bool = True):
    directory = str(directory)
    self.directory = epath.Path(directory if "://" in directory else os.path.abspath(directory))
    # An explicit policy: orbax's default also has InitialSavePolicy, which saves the first step
    # of a fresh directory even off-interval (e.g. step 1 with interval 1000).
    policy = ocp.checkpoint_managers.AnySavePolicy([
        ocp.checkpoint_managers.FixedIntervalPolicy(save_interval_steps),
        ocp.checkpoint_managers.PreemptionCheckpointingPolicy()])
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=save_interval_steps, save_decision_policy=policy,
        max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True)
    # Explicit handlers (not just item_names) so item_metadata works on a fresh manager, before any
    # restore: otherwise orbax returns None for unregistered items and no shape check is possible.
    self._mngr = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers=dict(state=ocp.StandardCheckpointHandler(), meta=ocp.JsonCheckpointHandler()))

  def save(self, step: int, state, meta: dict, *, force: bool = False) -> bool:
    """Starts saving `state` and `meta` at `step` if orbax's policy (or `force`) says so.

    The policy saves on multiples of `save_interval_steps` and at a multi-host preemption sync
    point, never at or below the latest saved step. Returns whether a save started; with `force`, a
    step already on disk is skipped (orbax would raise StepAlreadyExistsError).
    """
    step = int(step)
    json.dumps(meta)  # a non-JSON meta would otherwise fail later, in the background thread
    if force and step in self._mngr.all_steps():
      return False
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    return self._mngr.save(step, args=args, force=force)

  def wait(self):
    """Blocks until pending saves are committed; raises a failed background save's error."""
    self._mngr.wait_until_finished()
    self._mngr.check_for_errors()

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._mngr.all_steps())

  def reached_preemption(self, step: int) -> bool:
    """orbax's multi-host preemption sync point (False when JAX's preemption service is off)."""
    return self._mngr.reached_preemption(step)

  def should_stop(self, step: int) -> bool:
    """Whether the loop should do a final forced save and exit: SIGTERM seen or preemption reached."""
    return should_stop() or self.reached_preemption(step)

  def _resolve_step(self, step: int | None) -> int:
    """`step`, or the latest when None; FileNotFoundError when there is no such checkpoint."""
    if step is None:
      step = self.latest_step()
      if step is None:
        raise FileNotFoundError(f"no checkpoint in {self.directory}")
    elif step not in self._mngr.all_steps():
      raise FileNotFoundError(
          f"no checkpoint for step {step} in {self.directory}; steps: {self.all_steps()}")
    return step

  def restore(self, step: int | None, abstract_state, restartable=()):
    """Restores (state, meta) at `step` (None: latest) onto `abstract_state`'s shapes and shardings.

    `abstract_state` is a pytree of jax.ShapeDtypeStruct (e.g. from jax.eval_shape), carrying
    shardings to restore onto a different mesh. Leaf dtypes follow `abstract_state` (orbax casts).
    Raises FileNotFoundError when there is no such checkpoint and one ValueError naming the
    directory and the first differing leaf when the checkpoint's tree does not match.
    `restartable`: top-level items of a dict state (the trainer: 'memory', 'ema_params') whose
    stored tree may differ from the target's (a changed memory mechanism, an average switched on)
    or be missing from it (an average switched off): such an item is not read; it comes back as
    None where the target has it, for the caller to start afresh. Every other item must match.
    """
    step = self._resolve_step(step)
    stored = self._stored_tree(step) if restartable else None
    restart = [k for k in restartable
               if isinstance(abstract_state, dict) and (
                   _item_differs(stored, abstract_state, k) if k in abstract_state
                   else isinstance(stored, dict) and k in stored)]
    if restart:
      return self._restore_without(step, stored, abstract_state, restart)
    self._check_matches(step, abstract_state)
    args = ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore())
    try:
      out = self._mngr.restore(step, args=args)
    except ValueError as e:  # anything the metadata check missed still names the checkpoint
      raise ValueError(f"cannot restore checkpoint {self.directory / str(step)}: {e}") from e
    return out["state"], out["meta"]

  def _stored_tree(self, step: int):
    stored = self._mngr.item_metadata(step)["state"]
    return getattr(stored, "tree", stored)   # orbax TreeMetadata -> the nested dict

  def _restore_without(self, step: int, stored, abstract_state, restart):
    """(state with None for the `restart` items, meta): the other items are checked and read.
    stored: the checkpoint's state metadata tree (a dict)."""
    kept = {k: v for k, v in abstract_state.items() if k not in restart}
    self._check_matches(step, kept, {k: v for k, v in stored.items() if k not in restart})
    # The skipped items' stored leaves are PLACEHOLDERs (orbax reads nothing for them); this needs
    # the PyTree handler, as restore_item does, since StandardRestore takes no placeholders.
    target = dict(kept, **{k: jax.tree.map(lambda _: ocp.PLACEHOLDER, stored[k])
                           for k in restart if k in stored})
    restore_args = ocp.checkpoint_utils.construct_restore_args(target)
    path = self.directory / str(step) / "state"
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as reader:
      out = reader.restore(path, args=ocp.args.PyTreeRestore(item=target, restore_args=restore_args))
    state = {k: (None if k in restart else out[k]) for k in abstract_state}
    meta = self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    return state, meta

  def _check_matches(self, step: int, abstract_state, stored=None):
    """Compares the stored tree (paths, shapes) to `abstract_state` before reading any array."""
    where = f"checkpoint {self.directory / str(step)}"
    stored = self._mngr.item_metadata(step)["state"] if stored is None else stored
    if stored is None:
      return  # no metadata (e.g. an older format): orbax's own checks apply
    saved, want = flat_leaves(stored), flat_leaves(abstract_state)
    missing = [k for k in want if k not in saved]
    extra = [k for k in saved if k not in want]
    if missing or extra:
      raise ValueError(
          f"{where} has a different state structure than the model expects (another model or "
          f"optimizer config?). Missing from checkpoint ({len(missing)}): {missing[:5]}; "
          f"only in checkpoint ({len(extra)}): {extra[:5]}")
    for k, x in want.items():
      got = tuple(saved[k].shape)
      if got != tuple(x.shape):
        n = sum(tuple(saved[j].shape) != tuple(y.shape) for j, y in want.items())
        raise ValueError(
            f"{where} does not match the model (another model shape?): leaf '{k}' has shape "
            f"{got} in the checkpoint but {tuple(x.shape)} is expected ({n} leaves differ)")

  def restore_item(self, step: int | None, key: str = "params"):
    """Reads only `state[key]` of checkpoint `step` (None: latest) as numpy arrays, in the stored
    structure; the other leaves (optimizer state, memory) are not read. Returns (subtree, step).

    For initialising a different model from this run (longctx.warm_start): no abstract target is
    needed, so the stored shapes come back as they are and the caller matches them leaf by leaf.
    """
    step = self._resolve_step(step)
    stored = self._stored_tree(step)
    if not isinstance(stored, dict) or key not in stored:
      raise ValueError(f"checkpoint {self.directory / str(step) / 'state'} holds no '{key}' (top-level "
                       f"items: {sorted(stored) if isinstance(stored, dict) else type(stored).__name__})")
    # Leaves outside state[key] are PLACEHOLDERs: orbax skips them (StandardRestore would read all).
    out = self._read_numpy(step, stored, lambda path_: getattr(path_[0], "key", None) == key)
    return out[key], step

  def restore_numpy(self, step: int | None):
    """(state, meta) of checkpoint `step` (None: latest), every leaf a numpy array in the stored
    structure: no model is needed to shape it (tools that transform checkpoints, e.g.
    average_checkpoints). Returns (state, meta, step)."""
    step = self._resolve_step(step)
    state = self._read_numpy(step, self._stored_tree(step), lambda path_: True)
    meta = self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    return state, meta, step

  def _read_numpy(self, step: int, stored, wanted):
    """The leaves of state `step` whose path `wanted(path)` accepts, as numpy (others PLACEHOLDER)."""
    def target(path_, leaf):
      return jax.ShapeDtypeStruct(tuple(leaf.shape), leaf.dtype) if wanted(path_) else ocp.PLACEHOLDER
    item = jax.tree_util.tree_map_with_path(target, stored)
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
    path = self.directory / str(step) / "state"
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as reader:   # closed: it owns threads
      return reader.restore(path, args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args))

  def close(self):
    """Waits for pending saves (raising their errors) and releases orbax's threads."""
    try:
      self.wait()
    finally:
      self._mngr.close()

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    else:  # do not mask the loop's own exception with a save error
      try:
        self.close()
      except Exception:  # pylint: disable=broad-except
        logging.exception("checkpoint close failed while handling another exception")
    return False


def average_checkpoints(sources, out_directory) -> int:
  """Writes the mean of several checkpoints' `params` as a new checkpoint; returns its step.

  Checkpoint (Polyak) averaging along one run: single FAM checkpoints 200 steps apart read an 8K
  passkey up to 9 points apart; means of 2-7 of them read it higher (experiments/fam/README.md
  attempt 31). sources: [(checkpoints directory, step or None for the latest)], at least two,
  all of one model. The new checkpoint, at the last source's step in `out_directory` (which
  must hold none yet), is the last source's whole state (optimizer, RNG, carried memory, step)
  with params replaced by the element-wise mean (in float64, cast back); its meta is the last
  source's plus 'averaged_from' (the sources, as "directory:step"). For evaluation: resuming
  training from it pairs the averaged params with the last source's optimizer moments. A
  moving average the sources carry (train.ema_decay) is left out: the new checkpoint evaluates
  its mean params, and training resumed from it with train.ema_decay > 0 restarts the average.
  """
  if len(sources) < 2:
    raise ValueError(f"average_checkpoints needs at least two checkpoints, got {len(sources)}")

  def open_source(directory):
    if "://" not in str(directory) and not os.path.isdir(directory):  # the manager would create it
      raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    return Checkpointer(directory, async_save=False)

  # The last source's whole state is read; the others' params only, summed as they come (memory:
  # one state plus one float64 copy of the params, whatever the number of sources).
  with open_source(sources[-1][0]) as reader:
    state, meta, step = reader.restore_numpy(sources[-1][1])
    last = f"{reader.directory}:{step}"
  if not isinstance(state, dict) or "params" not in state:
    raise ValueError(f"checkpoint {last} holds no 'params'")
  want = {k: (v.shape, v.dtype) for k, v in flat_leaves(state["params"]).items()}
  total = jax.tree.map(lambda x: np.asarray(x, np.float64), state["params"])
  names = []
  for directory, source_step in sources[:-1]:
    with open_source(directory) as reader:
      params, source_step = reader.restore_item(source_step, "params")
      names.append(f"{reader.directory}:{source_step}")
    got = {k: (v.shape, v.dtype) for k, v in flat_leaves(params).items()}
    if got != want:
      differ = sorted(set(got.items()) ^ set(want.items()), key=str)[:3]
      raise ValueError(f"checkpoint {names[-1]} holds other params than {last} (another model?); "
                       f"first differences (leaf, shape, dtype): {differ}")
    total = jax.tree.map(lambda t, x: t + x, total, params)
  mean = jax.tree.map(lambda t, x: (t / len(sources)).astype(x.dtype), total, state["params"])
  writer = Checkpointer(out_directory, async_save=False)
  try:
    if writer.latest_step() is not None:
      raise ValueError(f"{writer.directory} already holds checkpoints {writer.all_steps()}: "
                       "write the average to an empty directory")
    state = {k: v for k, v in state.items() if k != "ema_params"}
    writer.save(step, dict(state, params=mean), dict(meta, averaged_from=names + [last]), force=True)
  finally:
    writer.close()
  return step
