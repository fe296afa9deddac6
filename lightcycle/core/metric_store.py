"""The metric store behind ``LightningModule.log`` and ``LightningModule.log_dict``.

:class:`MetricStore` holds what was logged during a run and produces
``trainer.callback_metrics``, ``trainer.logged_metrics`` and ``trainer.progress_bar_metrics``
with Lightning's semantics (``_step`` / ``_epoch`` forked names, ``/dataloader_idx_{i}``
suffixes, batch-size weighted means, which values are visible at which hook).

Which hook may log with which arguments is :mod:`lightcycle.core.fx_validator`; the per-key records are
:mod:`lightcycle.core.results`; a new key's checks and the remembered call sites :mod:`lightcycle.core.log_entries`.

Performance: nothing on the ``log`` path forces a host-device synchronisation. Logged tensors stay on their
device (detached), epoch accumulators are tensors, and values are converted to Python numbers only where they
are read (``progress_bar_metrics``, in one transfer per device). Key strings are formatted once per (hook,
name, dataloader) and cached.

The order of the Trainer's calls (Lightning's order of events): ``docs/design.md``, "The metric store".
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from lightcycle.core.log_entries import LogSites, entry_for, new_entry, refuse_no_step_no_epoch
from lightcycle.core.metric_objects import forward_value
from lightcycle.core.metric_values import accumulate, logged_tensor
from lightcycle.core.results import (
    _EMPTY_VIEW,
    STAGES,
    LogValue,
    _Collection,
    _Entry,
    _Key,
    _Meta,
    _Reduce,
    _reduce_code,
    _to_floats,
    _View,
    raise_meta_mismatch,
)

__all__ = ["STAGES", "LogValue", "MetricStore"]


class MetricStore:
    """What ``self.log`` recorded during a run, with Lightning's visibility rules.

    The store mirrors Lightning's logger connector: one collection per stage holds the
    logged keys and their accumulators; ``callback_metrics``, ``logged_metrics`` and
    ``progress_bar_metrics`` are persistent dicts (keys stay until :meth:`reset_run`) that
    are refreshed from the *live view* of the active stage each time they are read and at
    the structural points (end of batch, end of a dataloader, end of epoch).

    The live view depends on where the active stage is:

    * inside its batches (from the first :meth:`start_batch` to :meth:`end_epoch`): the
      last step values of keys logged with ``on_step=True`` (forked keys as ``name_step``;
      in the training stage they also appear as ``name`` in ``callback_metrics``;
      evaluation step values never reach ``callback_metrics``);
    * otherwise (epoch start and epoch end hooks): the running epoch reduction of keys
      logged with ``on_epoch=True`` (forked keys as ``name_epoch``, and ``name`` in
      ``callback_metrics``).

    Only keys logged under the current dataloader index are in the live view; at epoch
    end the index is ``None`` (values of each dataloader were stored when it finished).
    """

    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}
        self._stack: list[_Collection] = []
        self._callback: dict[str, Tensor] = {}
        self._logged: dict[str, Tensor] = {}
        self._pbar: dict[str, Tensor | float] = {}  # (numbers: step values read by the bar alone)
        self._pbar_floats: dict[str, float] | None = None
        self._snapshots: dict[str, tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor | float]]] = {}
        self._eval_outputs: list[dict[str, Tensor]] = []
        # generation counter: bumped by anything that changes the live view
        self._gen = 0
        self._view: _View = _EMPTY_VIEW
        self._view_gen = -1
        self._callback_gen = -1
        self._logged_gen = -1
        self._pbar_gen = -1
        # a training batch ended (close_batch) without its view merged into the stored dicts:
        # merged at the next point where the view changes shape (see _flush), or when read
        self._pending = False
        # ``log`` call sites already checked; ``_steady`` (read by LightningModule.log) and
        # ``_sites`` (by log_site) are its dicts, held here for the lookup saved on every call
        self._log_sites = LogSites()
        self._steady = self._log_sites.steady
        self._sites = self._log_sites.sites

    # ------------------------------------------------------------------ logging (hot path)

    def log(
        self,
        fx: str,
        name: str,
        value: LogValue,
        *,
        stage: str,
        prog_bar: bool = False,
        logger: bool = True,
        on_step: bool = False,
        on_epoch: bool = True,
        reduce_fx: _Reduce = "mean",
        batch_size: int | None = None,
        dataloader_idx: int | None = None,
        add_dataloader_idx: bool = True,
        site: tuple[Any, ...] | None = None,
    ) -> None:
        """Record one logged value (``LightningModule.log`` after argument resolution).

        ``LightningModule.log_dict`` calls this once per key. Never synchronises with the
        device: the value is detached and kept where it is.

        Args:
            fx: the hook the call was made from (``LightningModule._current_fx_name``).
            name: key name; must not contain ``/dataloader_idx_`` when
                ``add_dataloader_idx`` is True.
            value: a Python number or a single-element tensor.
            stage: the stage whose collection receives the value (one of :data:`STAGES`).
            prog_bar: also show the value in ``progress_bar_metrics``.
            logger: also put the value in ``logged_metrics`` (what loggers receive).
            on_step: keep the step value (resolved by :func:`check_logging_allowed`).
            on_epoch: accumulate the value into an epoch reduction.
            reduce_fx: epoch reduction: ``"mean"`` (weighted by batch size), ``"sum"``,
                ``"max"``, ``"min"`` or the matching ``torch``/builtin function.
            batch_size: weight of this value in a mean; ``None`` infers it from the batch
                given to :meth:`start_batch` (1 when there is none).
            dataloader_idx: index of the dataloader being run, ``None`` to use the one
                given to :meth:`start_batch` (``None`` for a single dataloader).
            add_dataloader_idx: suffix the key with ``/dataloader_idx_{i}`` when a
                dataloader index is set.
            site: the caller's key for this call site (hook, name, stage and the arguments
                as given, see :meth:`log_site`); remembered once the call succeeded.

        Raises:
            MisconfigurationException: ``on_step`` and ``on_epoch`` both False, an unknown
                reduction, a name carrying the dataloader suffix, or the same key logged
                again from the same hook with different arguments.
            TypeError: ``value`` is not a number or a tensor.
            ValueError: ``value`` is a tensor with more than one element, or ``stage`` is
                unknown.
        """
        if not on_step and not on_epoch:
            refuse_no_step_no_epoch(name)
        coll = self._collections.get(stage)
        if coll is None:
            coll = self._collection(stage)
        given_idx = dataloader_idx
        if dataloader_idx is None:
            dataloader_idx = coll.dataloader_idx
        code = _reduce_code(reduce_fx)
        key: _Key = (fx, name, dataloader_idx if add_dataloader_idx else None)
        meta: _Meta = (prog_bar, logger, on_step, on_epoch, code, add_dataloader_idx, dataloader_idx)
        entry = coll.entries.get(key)
        if entry is None:  # (entry_for, inlined)
            entry = new_entry(coll, key, meta)
        elif entry.meta != meta:
            raise_meta_mismatch(entry, meta)

        self._record(coll, entry, value, batch_size)
        if site is not None:
            # an unhashable argument (a reduce_fx list, say): this site is not remembered
            with contextlib.suppress(TypeError):
                self._log_sites.remember(site, coll, entry, value, given_idx is None)

    def log_site(self, site: tuple[Any, ...], value: Tensor, batch_size: int | None) -> bool:
        """Record ``value`` for a call site that :meth:`log` accepted before, if it is one.

        Every check of :meth:`log` and ``LightningModule.log`` depends only on the hook, the
        stage, the name and the arguments, which make up ``site`` (with the dataloader index
        the caller passed); the entry it resolved to is reused, and only the value is checked
        and recorded. Steady sites never get here (``LightningModule.log`` records them, see
        :class:`~lightcycle.core.log_entries.LogSites`); forgotten by :meth:`reset_run` and :meth:`discard_stage`.

        Args:
            site: ``LightningModule.log``'s key for the call.
            value: the tensor to record.
            batch_size: as in :meth:`log`.

        Returns:
            False when the site is new (or its dataloader changed): call :meth:`log`.

        Raises:
            ValueError: a tensor with more than one element.
        """
        try:
            hit = self._sites.get(site)
        except TypeError:  # an unhashable argument: never remembered, see log
            return False
        if hit is None:
            return False
        coll, entry = hit
        if entry.dl_idx != coll.dataloader_idx:
            return False  # another dataloader's entry: let ``log`` resolve it
        self._record(coll, entry, value, batch_size)
        return True

    def _record(self, coll: _Collection, entry: _Entry, value: LogValue, batch_size: int | None) -> None:
        """Check and convert the value, then store or accumulate it in ``entry``."""
        tensor = logged_tensor(entry, value)
        # -- accumulate (Lightning's _ResultMetric.update)
        entry.active = True
        self._gen += 1
        if entry.on_step:
            entry.step_value = tensor
            if not entry.on_epoch:
                return
        accumulate(coll, entry, tensor, batch_size)

    def log_metric(
        self,
        fx: str,
        name: str,
        metric: Any,
        *,
        stage: str,
        metric_attribute: str,
        prog_bar: bool = False,
        logger: bool = True,
        on_step: bool = False,
        on_epoch: bool = True,
        reduce_fx: _Reduce = "mean",
        dataloader_idx: int | None = None,
        add_dataloader_idx: bool = True,
    ) -> None:
        """Record a logged ``torchmetrics.Metric`` (Lightning's ``_ResultMetric`` with ``is_tensor=False``).

        Records the object and its step value; the semantics (step value, ``compute()``, when
        ``reset()`` is called: :meth:`close_epoch`, :meth:`end_stage`) are :mod:`lightcycle.core.metric_objects`'s.

        Args:
            fx: the hook the call was made from.
            name: key name.
            metric: the ``torchmetrics.Metric``.
            stage: one of :data:`STAGES`.
            metric_attribute: the module attribute holding ``metric`` (part of the key's metadata,
                as in Lightning: logging a number under the same key from the same hook is refused).
            prog_bar: see :meth:`log`.
            logger: see :meth:`log`.
            on_step: log the step value.
            on_epoch: log ``metric.compute()`` at epoch end.
            reduce_fx: validated as in :meth:`log`, then unused (the metric reduces itself).
            dataloader_idx: see :meth:`log`.
            add_dataloader_idx: see :meth:`log`.

        Raises:
            MisconfigurationException: as :meth:`log`.
            ValueError: the metric's last ``forward`` result is not a tensor.
        """
        if not on_step and not on_epoch:
            refuse_no_step_no_epoch(name)
        coll = self._collection(stage)
        if dataloader_idx is None:
            dataloader_idx = coll.dataloader_idx
        code = _reduce_code(reduce_fx)
        key: _Key = (fx, name, dataloader_idx if add_dataloader_idx else None)
        meta: _Meta = (prog_bar, logger, on_step, on_epoch, code, add_dataloader_idx, dataloader_idx, metric_attribute)
        entry = entry_for(coll, key, meta)
        entry.metric = metric  # Lightning keeps the latest object logged under the key
        entry.active = True
        entry.computed = None
        if on_step:
            entry.step_value = forward_value(name, metric)
        self._gen += 1

    # ------------------------------------------------------------------ lifecycle

    def _collection(self, stage: str) -> _Collection:
        coll = self._collections.get(stage)
        if coll is None:
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
            key = STAGES[STAGES.index(stage)]  # a plain str, also for str-enum stages
            coll = self._collections[key] = _Collection(key)
        return coll

    def _merge(self, view: _View) -> None:
        callback, log, pbar = view
        self._callback.update(callback)
        self._logged.update(log)
        if pbar:
            self._pbar.update(pbar)
            self._pbar_floats = None

    def _merge_live(self) -> _View:
        self._pending = False
        view = self._live_view()
        self._merge(view)
        gen = self._gen
        self._callback_gen = self._logged_gen = self._pbar_gen = gen
        return view

    def _close(self, coll: _Collection) -> None:
        """Merge the epoch view of ``coll`` and reset its accumulators (no output kept)."""
        self._merge(coll.view(on_step=False))
        self._reset(coll)
        self._gen += 1

    def _reset(self, coll: _Collection) -> None:
        """Reset the accumulators of ``coll``; its entries are inactive until logged again."""
        coll.reset()
        self._log_sites.forget_steady(coll.stage)

    def _flush(self) -> None:
        """Merge the view that :meth:`close_batch` left unmerged, before the view changes shape.

        Within a stage's batches the view only gains keys and newer values (entries stay
        active until their epoch is reset), so merging the latest view once stores what
        merging it after every batch would have.
        """
        if self._pending:
            self._merge_live()

    def _activate(self, stage: str) -> _Collection:
        coll = self._collection(stage)
        stack = self._stack
        if stack and stack[-1] is coll:
            return coll
        self._flush()
        if coll in stack:
            while stack[-1] is not coll:
                self._close(stack.pop())
        else:
            self._snapshots[stage] = (dict(self._callback), dict(self._logged), dict(self._pbar))
            stack.append(coll)
        self._gen += 1
        return coll

    def reset_run(self) -> None:
        """Forget everything: call at the start of every fit / validate / test / predict.

        Lightning clears ``callback_metrics`` (and the other two) at the start of each run.
        """
        self._collections = {}
        self._stack = []
        self._callback = {}
        self._logged = {}
        self._pbar = {}
        self._pbar_floats = None
        self._snapshots = {}
        self._eval_outputs = []
        self._pending = False
        self._log_sites.clear()
        self._gen += 1

    def start_epoch(self, stage: str) -> None:
        """Open an epoch of ``stage`` and make it the active stage.

        Call right before the ``on_train_epoch_start`` hooks (training, every epoch; it may
        also be called before ``on_train_start``), or before the ``on_validation_start`` /
        ``on_test_start`` hooks (evaluation, including the sanity check with stage
        ``"sanity_check"``). Evaluation started inside a training epoch stacks on top of
        the training stage, which becomes active again when it is closed.

        Accumulators are reset by :meth:`close_epoch`; values logged since then (e.g. in
        ``on_train_start`` / ``on_validation_start``) count toward this epoch, as in
        Lightning. An epoch that was ended but never closed is closed here; one abandoned
        after some batches (no :meth:`end_epoch`) has its values dropped.

        Args:
            stage: one of :data:`STAGES`.
        """
        self._flush()
        coll = self._activate(stage)
        if coll.ended:
            self._close(coll)
        elif coll.seen_batch:  # the previous epoch was abandoned mid-way: drop its values
            self._reset(coll)
        coll.dataloader_idx = None
        coll.outputs = []
        coll.seen_batch = False
        # Lightning shares ``_first_loop_iter`` between loops: evaluation started inside a
        # training epoch begins with the training loop's (step-level) view.
        stack = self._stack
        coll.in_batches = len(stack) > 1 and stack[-2].in_batches
        self._gen += 1

    def start_batch(self, stage: str, dataloader_idx: int | None = None, batch: Any = None) -> None:
        """Enter a batch: call before the ``on_*_batch_start`` hooks.

        When the dataloader index changes (several evaluation dataloaders), the epoch
        values of the finished dataloader are stored first, as Lightning does.

        Args:
            stage: one of :data:`STAGES`.
            dataloader_idx: index of the dataloader the batch comes from, ``None`` when the
                stage has a single dataloader (Lightning passes ``None`` then).
            batch: the batch, used to infer the batch size for mean reductions when
                ``log`` gets no ``batch_size``. Only read when needed.
        """
        coll = self._collections.get(stage)
        stack = self._stack
        if coll is None or not stack or stack[-1] is not coll:
            coll = self._activate(stage)
        if dataloader_idx != coll.dataloader_idx:
            if coll.seen_batch and not coll.training:
                self._flush()
                self._store_dataloader(coll)
            if dataloader_idx is not None:  # its steady sites assumed the index None (see LogSites.remember)
                self._log_sites.forget_steady(coll.stage)
        coll.seen_batch = True
        coll.in_batches = True
        coll.dataloader_idx = dataloader_idx
        coll.batch = batch
        coll.batch_size = None
        self._gen += 1

    # start_batch's and close_batch's case of every training batch (the training collection,
    # the only one with ``training`` set, on top of the stack) as source lines that the
    # generated batch functions (runtime/fused_step.py) inline; each an ``if`` whose ``else``
    # (the method's call) the caller writes. Keep them in step with the methods. After the
    # epoch's first batch, starting one changes no flag (a training collection's dataloader
    # index is always None): the view is the same, no new generation.
    INLINE_START_TRAIN_BATCH = (
        "stack = {store}._stack",
        "if stack and (coll := stack[-1]).training:",
        "    coll.batch = {batch}",
        "    coll.batch_size = None",
        "    if not (coll.in_batches and coll.seen_batch):",
        "        coll.seen_batch = coll.in_batches = True",
        "        coll.dataloader_idx = None",
        "        {store}._gen += 1",
    )
    INLINE_CLOSE_TRAIN_BATCH = (  # then the caller's lines, inside: close_batch returned True
        "stack = {store}._stack",
        "if stack and (coll := stack[-1]).training:",
        "    coll.batch = coll.batch_size = None",
        "    if coll.entries:",
        "        {store}._pending = True",
    )

    def end_batch(self, stage: str) -> dict[str, Tensor]:
        """Leave a batch: call after the ``on_*_batch_end`` hooks (module and callbacks).

        Args:
            stage: one of :data:`STAGES`.

        Returns:
            The step values to send to the loggers for this batch (empty during the sanity
            check). The Trainer decides whether to send them (``log_every_n_steps``).
        """
        coll = self._collections.get(stage)
        stack = self._stack
        if coll is None or not stack or stack[-1] is not coll:
            coll = self._activate(stage)
        coll.batch = None
        coll.batch_size = None
        if not coll.entries:
            # Nothing was ever logged in this stage: the live view is empty, merging it
            # changes nothing. O(1), no allocation but the returned dict.
            gen = self._gen
            self._view = _EMPTY_VIEW
            self._view_gen = self._callback_gen = self._logged_gen = self._pbar_gen = gen
            return {}
        if not coll.step_logged or coll.stage == "sanity_check":
            # Nothing for the loggers (the usual evaluation: epoch values only): the view is
            # merged when read or before it changes shape, as after close_batch, not per batch.
            self._pending = True
            return {}
        return dict(self._merge_live()[1])

    def close_batch(self, stage: str) -> bool:
        """Leave a batch as :meth:`end_batch` does, without building its view now.

        For the training loop, whose loggers read the step values every
        ``log_every_n_steps`` batches and the progress bar every few hundred ms: the view is
        built when something reads it (:meth:`step_metrics`, the three metric properties) or
        before the view changes shape (a new stage, the epoch end), not after every batch.

        Args:
            stage: one of :data:`STAGES`.

        Returns:
            Whether the batch has step values for the loggers to ask for (something was
            logged in this stage; never in the sanity check).
        """
        coll = self._collections.get(stage)
        stack = self._stack
        if coll is None or not stack or stack[-1] is not coll:
            coll = self._activate(stage)
        coll.batch = None
        coll.batch_size = None
        if not coll.entries:
            return False
        self._pending = True
        return coll.stage != "sanity_check"

    def step_metrics(self) -> dict[str, Tensor]:
        """The step values for the loggers after :meth:`close_batch` (what :meth:`end_batch` returns).

        Returns:
            A new dict.
        """
        return dict(self._merge_live()[1])

    def _store_dataloader(self, coll: _Collection) -> None:
        view = coll.view(on_step=False)
        if coll.stage != "sanity_check":
            self._merge(view)
            coll.outputs.append(dict(view[1]))
        self._gen += 1

    def end_epoch(self, stage: str) -> None:
        """Reduce the epoch accumulators: call before the ``on_*_epoch_end`` hooks.

        From here until :meth:`close_epoch` the live view holds the epoch reductions
        (including values logged in the epoch-end hooks themselves, so a callback running
        after ``LightningModule.on_train_epoch_end`` sees what it logged). For evaluation,
        the values of the last dataloader are stored and the dataloader index becomes
        ``None``.

        Args:
            stage: one of :data:`STAGES`.
        """
        self._flush()
        coll = self._activate(stage)
        if not coll.training:
            self._store_dataloader(coll)
            coll.dataloader_idx = None
        coll.in_batches = False
        coll.ended = True
        coll.batch = None
        coll.batch_size = None
        self._gen += 1

    def close_epoch(self, stage: str) -> dict[str, Tensor]:
        """Finish the epoch: call after all ``on_*_epoch_end`` hooks.

        Merges the epoch values into the stored metrics, resets the stage's accumulators and
        deactivates it (the enclosing stage, if any, becomes active again).

        Args:
            stage: one of :data:`STAGES`.

        Returns:
            The epoch values to send to the loggers (for evaluation: all dataloaders plus
            what was logged at epoch end; empty for the sanity check). For ``validate`` /
            ``test``, :attr:`eval_outputs` then holds the per-dataloader results.
        """
        self._flush()
        coll = self._activate(stage)
        if not coll.ended:
            self.end_epoch(stage)
        view = self._merge_live()
        out: dict[str, Tensor]
        if coll.training:
            out = dict(view[1])
        elif coll.stage == "sanity_check":
            out = {}
        else:
            out = coll.epoch_outputs(view[1])
            self._eval_outputs = coll.outputs
        self._reset(coll)
        if coll.training:  # Lightning's update_train_epoch_metrics -> reset_results
            coll.reset_metric_objects()
        self._stack.pop()
        self._gen += 1
        return out

    def end_stage(self, stage: str) -> None:
        """Reset the metric objects logged in an evaluation stage: call after the ``on_*_end`` hooks.

        Lightning resets an evaluation loop's results (calling ``reset()`` on each logged
        ``torchmetrics.Metric``) after the ``on_validation_end`` / ``on_test_end`` hooks, so those
        hooks still see the metrics' states. Numbers and tensors were already reset by
        :meth:`close_epoch`. O(1) when nothing was logged in ``stage``.

        Args:
            stage: one of :data:`STAGES`.
        """
        coll = self._collections.get(stage)
        if coll is not None:
            coll.reset_metric_objects()

    def discard_stage(self, stage: str) -> None:
        """Drop everything logged during ``stage`` (after the sanity check).

        The stage is closed without merging, its accumulators are reset, and the stored
        ``callback_metrics`` / ``logged_metrics`` / ``progress_bar_metrics`` go back to
        what they were when ``stage`` was last activated.

        Args:
            stage: one of :data:`STAGES`.
        """
        self._flush()
        coll = self._collection(stage)
        stack = self._stack
        if coll in stack:
            while stack:
                top = stack.pop()
                top.reset()
                if top is coll:
                    break
        coll.reset()
        coll.clear()
        self._log_sites.clear()  # (its entries are gone)
        snapshot = self._snapshots.pop(stage, None)
        if snapshot is not None:
            self._callback, self._logged, self._pbar = dict(snapshot[0]), dict(snapshot[1]), dict(snapshot[2])
            self._pbar_floats = None
        self._gen += 1

    def teardown(self) -> None:
        """End of run: fold the live view in and move the stored values to the CPU."""
        self._merge_live()
        self._callback = {k: v.cpu() for k, v in self._callback.items()}
        self._logged = {k: v.cpu() for k, v in self._logged.items()}
        self._pbar = {k: v.cpu() if isinstance(v, Tensor) else v for k, v in self._pbar.items()}
        self._eval_outputs = [{k: v.cpu() for k, v in d.items()} for d in self._eval_outputs]
        self._gen += 1

    # ------------------------------------------------------------------ reading

    def _live_view(self) -> _View:
        if self._view_gen != self._gen:
            stack = self._stack
            if stack:
                top = stack[-1]
                self._view = top.view(on_step=top.in_batches)
            else:
                self._view = _EMPTY_VIEW
            self._view_gen = self._gen
        return self._view

    @property
    def callback_metrics(self) -> dict[str, Tensor]:
        """Values callbacks can monitor (``trainer.callback_metrics``).

        Returns:
            The stored dict (same object between reads), refreshed from the live view.
        """
        if self._callback_gen != self._gen:
            self._callback.update(self._live_view()[0])
            self._callback_gen = self._gen
        return self._callback

    @property
    def logged_metrics(self) -> dict[str, Tensor]:
        """Values sent to the loggers (``trainer.logged_metrics``).

        Returns:
            The stored dict (same object between reads), refreshed from the live view.
        """
        if self._logged_gen != self._gen:
            self._logged.update(self._live_view()[1])
            self._logged_gen = self._gen
        return self._logged

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        """Values for the progress bar (``trainer.progress_bar_metrics``), as floats.

        Reading converts the tensors with one transfer per device; the result is cached
        until something changes.

        Returns:
            A dict of Python floats.
        """
        gen = self._gen
        if self._pbar_gen != gen:
            stack = self._stack
            if self._view_gen == gen or not stack or not stack[-1].in_batches:
                pbar: Mapping[str, Tensor | float] = self._live_view()[2]  # (epoch values: the full view)
            else:
                # Why: the bar reads between batches, where its step values are all it needs; the
                # full view (tensors made of the stored numbers) waits for a reader that needs it.
                pbar = stack[-1].bar_view()
            if pbar:
                self._pbar.update(pbar)
                self._pbar_floats = None
            self._pbar_gen = self._gen
        if self._pbar_floats is None:
            self._pbar_floats = _to_floats(self._pbar)
        return self._pbar_floats

    @property
    def eval_outputs(self) -> list[dict[str, Tensor]]:
        """Per-dataloader results of the last closed ``validate`` / ``test`` epoch.

        Returns:
            One dict per dataloader (what ``Trainer.validate`` / ``test`` return once
            converted to floats); each includes the values logged at epoch end.
        """
        return self._eval_outputs

    @property
    def active_stage(self) -> str | None:
        """The stage whose values make up the live view.

        Returns:
            The stage name, or ``None`` when no stage is open.
        """
        return self._stack[-1].stage if self._stack else None
