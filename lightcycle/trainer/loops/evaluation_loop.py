"""Validation, test and predict: Lightning's ``_EvaluationLoop`` and ``_PredictionLoop``.

One :class:`EvaluationLoop` runs ``trainer.validate``, one ``trainer.test`` and one the fit's
validation and sanity check (``trainer.fit_loop.epoch_loop.val_loop``), as Lightning keeps
three; :class:`PredictionLoop` runs ``trainer.predict``. Each holds its loaders, its batch
progress (the checkpoint's ``loops`` entry) and what its last run returned. The events of a
run and what the metric store and loggers see are :class:`~lightcycle.runtime.evaluation.EvalRun`'s,
shared with :class:`~lightcycle.custom_loop.LoopDriver`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from lightcycle.errors import SIGTERMException
from lightcycle.profilers.wrapping import fetch_timer
from lightcycle.runtime import preflight
from lightcycle.runtime.data import Lookahead, as_loader_list
from lightcycle.runtime.evaluation import EvalRun
from lightcycle.states import declaration as ev
from lightcycle.states.stages import RunningStage, TrainerFn
from lightcycle.trainer.flags import sequential_loaders
from lightcycle.trainer.loops.data import CombinedBatches, combined_count, load_eval
from lightcycle.trainer.loops.progress import BatchProgress

if TYPE_CHECKING:
    from lightcycle.trainer.trainer import Trainer


class EvaluationLoop:
    """One evaluation loop of a Trainer: its loaders, its progress, its runs.

    Args:
        trainer: the Trainer it runs for.
        events: the loop's events and words (``declaration.EVAL[noun]``).
        in_fit: the fit's validation loop (sanity check and validation during fit),
            rather than the one of its own entry point.
    """

    def __init__(self, trainer: Trainer, events: ev.EvalEvents, in_fit: bool = False) -> None:
        self.trainer = trainer
        self.events = events
        self.in_fit = in_fit
        self.batch_progress = BatchProgress(last_batch_key=events.noun != "predict")
        """Batches of the last run (``current``) and since the counter was last reset (``total``)."""
        self._has_run = False
        """A (non-sanity) batch ran in the last run (Lightning's flag, read by ModelCheckpoint)."""
        self._loaders: list[Any] = []
        self._loaded_at = -math.inf  # the epoch of the last load during fit (reload_dataloaders_every_n_epochs)
        self._last_outputs: list[dict[str, float]] = []
        self._cached_run: tuple[tuple[Any, ...], EvalRun] | None = None  # the last run's object (see _eval_run)

    # ------------------------------------------------------------------ data

    def setup_data(self, sanity: bool = False) -> tuple[list[Any], list[int | float]]:
        """Request the loop's loaders (the ``*_dataloader`` event) and count their batches.

        Args:
            sanity: for the sanity check: the counts are cut to ``num_sanity_val_steps``.

        Returns:
            The loaders and the batches each runs.
        """
        t = self.trainer
        kind = self.events.kind
        value = t._driver.fire(self.events.loader)
        if kind in t._explicit:
            value = t._explicit[kind]
        limit = getattr(t, f"limit_{kind}_batches")
        if t.overfit_batches > 0 and kind == "val" and t.state.fn is TrainerFn.FITTING:
            value = sequential_loaders(as_loader_list(value, "val"), "val")  # before any sampler wrapping
        loaders, counts, per_loader, stored = load_eval(
            value, kind, limit, f"limit_{kind}_batches", t._loader_preparer()
        )
        self._loaders = loaders
        if kind == "val":
            if t.state.fn is TrainerFn.FITTING:
                self._loaded_at = t.current_epoch
            t.val_dataloaders = stored
            t.num_val_batches = per_loader
            if sanity:
                per_loader = [min(t.num_sanity_val_steps, c) for c in per_loader]
                t.num_sanity_val_batches = per_loader
                # a non-sequential CombinedLoader: its combined count under the cut limits
                combined = isinstance(loaders[0], CombinedBatches)
                counts = [combined_count(loaders[0], per_loader)] if combined else per_loader
        elif kind == "test":
            t.test_dataloaders = stored
            t.num_test_batches = per_loader
        else:
            t.predict_dataloaders = stored
            t.num_predict_batches = per_loader
        return loaders, counts

    def run_counts(self) -> list[int | float]:
        """The batches a validation during fit runs from the loaded loaders (no new request).

        Returns:
            ``trainer.num_val_batches``, or for a non-sequential CombinedLoader its combined
            count (its limits put back after the sanity check cut them).
        """
        per_loader: list[int | float] = self.trainer.num_val_batches
        if self._loaders and isinstance(self._loaders[0], CombinedBatches):
            return [combined_count(self._loaders[0], per_loader)]
        return per_loader

    # ------------------------------------------------------------------ one run

    def run(self, loaders: list[Iterable[Any]], counts: list[int | float], stage: RunningStage) -> list[Any]:
        """One evaluation run over ``loaders`` in sequence.

        Args:
            loaders: the loaders.
            counts: the batches to run from each.
            stage: the running stage (the sanity check's validation runs as ``sanity_check``).

        Returns:
            For predict, the predictions per loader; otherwise an empty list.
        """
        t = self.trainer
        e = self.events
        if e.noun == "predict" and loaders and isinstance(loaders[0], CombinedBatches):
            # Lightning's prediction loop refuses it when the run starts (its reset), before any hook
            raise ValueError('`trainer.predict()` only supports the `CombinedLoader(mode="sequential")` mode.')
        preflight.verify_dataloader_idx(t.lightning_module, e.noun, e.kind, len(loaders))  # where Lightning checks
        several = len(loaders) > 1
        predict = e.noun == "predict"
        predictions: list[list[Any]] = [[] for _ in loaders]
        self._last_outputs = []
        self._has_run = False
        progress = self.batch_progress
        progress.start_run()
        sanity = stage is RunningStage.SANITY_CHECKING
        with _eval_context(t.inference_mode):
            run = self._eval_run(stage.value)
            run.open()
            start_batch, step, end_batch = run.start_batch, run.step, run.end_batch
            last_loader = max((i for i, n in enumerate(counts) if n > 0), default=-1)
            fetched = fetch_timer(t.profiler, e.kind)  # None without a profiler
            for dl_idx, (loader, n) in enumerate(zip(loaders, counts, strict=True)):
                if n == 0:
                    continue
                log_idx = dl_idx if several else None
                t._current_dataloader_idx = log_idx
                batches = Lookahead(loader, n, wrap=fetched)
                batch_idx = -1
                for batch_idx, batch in batches:
                    batch = start_batch(batch, batch_idx, log_idx)
                    out = step(batch, batch_idx, log_idx)
                    end_batch(out, batch, batch_idx, log_idx)
                    if predict:
                        predictions[dl_idx].append(out)
                    if t.received_sigterm and not (batches.done and dl_idx == last_loader):
                        progress.add(batch_idx + 1, is_last_batch=False)
                        raise SIGTERMException()
                progress.add(batch_idx + 1, is_last_batch=dl_idx == last_loader)  # counted per loader, not per batch
            if not sanity and last_loader >= 0:
                self._has_run = True
            run.end_epoch()
            if not sanity and not predict:
                self._last_outputs = [{k: float(v) for k, v in d.items()} for d in t._results.eval_outputs]
            run.end()
        return predictions

    def _eval_run(self, stage: str) -> EvalRun:
        """The run's :class:`EvalRun`: the last run's while what it was made from is the same.

        Made from the driver's bind (a new context at each), the precision, the device, the
        stage and whether there are loggers; building one costs hundreds of bytecodes (its
        event functions fetched and wrapped), once per validation of a fit otherwise.
        """
        t = self.trainer
        key = (t._driver._context, t.precision_plugin, t.strategy.root_device, stage, bool(t.loggers))
        cached = self._cached_run
        if cached is not None and same_items(cached[0], key):
            run = cached[1]
            run.ended = False  # (what a new one starts with; own_step is the LoopDriver's)
            return run
        run = EvalRun(t, self.events, stage)
        self._cached_run = (key, run)
        return run

    def run_entry(self, fn: TrainerFn, ckpt_path: str | None) -> Any:
        """``validate``/``test``/``predict``: setup, one evaluation run, teardown (spec 3.11-3.13).

        Args:
            fn: the entry point.
            ckpt_path: a checkpoint to load first (already read and checked).

        Returns:
            The logged epoch metrics per loader, or for predict the predictions.
        """
        t = self.trainer
        fire = t._driver.fire
        t._attach_model_callbacks(fire(ev.ENTRY[fn.value]))
        fire(ev.PREPARE_DATA)
        fire(ev.SETUP, fn)
        if ckpt_path is not None:
            checkpoint = t._checkpoints.restore_start(ckpt_path)
            t._checkpoints.restore_eval_state(checkpoint)
        t._results.reset_run()
        t._eval_steps.reset()
        module = t.lightning_module
        assert module is not None
        t._log_hyperparameters()
        module.zero_grad()
        result = self._skipped_result()
        kind = self.events.kind
        if t._eval_enabled(kind):
            loaders, counts = self.setup_data()
            if sum(counts) > 0:
                result = self._result(self.run(loaders, counts, self.events.stage))
        fire(ev.TEARDOWN, fn)  # after the declared strategy_teardown action
        return result

    def _skipped_result(self) -> Any:
        return []

    def _result(self, predictions: list[Any]) -> Any:
        return self._last_outputs

    # ------------------------------------------------------------------ checkpoint state

    def reset_progress(self) -> None:
        """All counters back to zero (Lightning's ``_reset_progress``, after the sanity check)."""
        self.batch_progress = BatchProgress(last_batch_key=self.batch_progress.last_batch_key)

    def state_dict(self) -> dict[str, Any]:
        """The loop's entry of a checkpoint's ``loops`` (Lightning's keys)."""
        return {"state_dict": {}, "batch_progress": self.batch_progress.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote (missing keys: the counters stay at zero)."""
        self.batch_progress.load_state_dict(state.get("batch_progress", {}))


class PredictionLoop(EvaluationLoop):
    """``trainer.predict_loop``: an evaluation run that collects what ``predict_step`` returns."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__(trainer, ev.EVAL["predict"])

    def _skipped_result(self) -> Any:
        return None  # Lightning: a skipped predict returns None

    def _result(self, predictions: list[Any]) -> Any:
        return predictions[0] if len(predictions) == 1 else predictions


def print_results(results: list[dict[str, float]], verb: str) -> None:
    """Print the metrics ``validate``/``test`` return, one table per loader (``verbose=True``).

    Args:
        results: the metrics per loader.
        verb: the entry point (``validate``, ``test``), in the tables' titles.
    """
    for i, metrics in enumerate(results):
        if not metrics:
            continue
        title = f"{verb} metric" + (f" (dataloader {i})" if len(results) > 1 else "")
        width = max([len(title)] + [len(k) for k in metrics])
        print(f"{title:<{width}}  value")
        for key, value in metrics.items():
            print(f"{key:<{width}}  {value:.6g}")


_BY_VALUE = (int, bool, str, torch.device)  # (a device property may make a new, equal, object per read)


def same_items(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Item by item the same objects (ints, bools, strings and devices: equal values of one type).

    For keys of what a cached object was made from: identity, not ``==`` (an object equal
    to another is not the one a generated function holds).
    """
    for x, y in zip(a, b, strict=True):
        if x is not y and not (type(x) is type(y) and type(x) in _BY_VALUE and x == y):
            return False
    return True


@contextmanager
def _eval_context(inference: bool) -> Iterator[None]:
    with torch.inference_mode() if inference else torch.no_grad():
        yield
