"""``trainer.fit``: Lightning's ``_FitLoop`` (``trainer.fit_loop``).

The fit loop is the run host's progress record (:class:`~lightcycle.runtime.progress.FitLoopProgress`:
epochs, steps, limits, Lightning's stopping rules) with the fit's control flow added: setup,
the restore of a checkpoint, the sanity check, the epochs (each run by its
:class:`~lightcycle.trainer.loops.TrainingEpochLoop`), teardown, and the ``loops`` entries of
a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from lightcycle.runtime.data import as_loader_list
from lightcycle.runtime.progress import SHOULD_STOP_REASON, FitLoopProgress
from lightcycle.runtime.rng import isolate_rng
from lightcycle.states import declaration as ev
from lightcycle.states.stages import RunningStage, TrainerFn
from lightcycle.trainer.flags import reload_due, sequential_loaders
from lightcycle.trainer.loops.data import load_train
from lightcycle.trainer.loops.progress import EpochProgress, Tracker
from lightcycle.trainer.loops.training_epoch_loop import TrainingEpochLoop
from lightcycle.utilities.rank_zero import rank_zero_debug, rank_zero_info

if TYPE_CHECKING:
    from lightcycle.trainer.trainer import Trainer

_IN_EPOCH = "fit.train.epoch."  # the states of a training epoch, up to its on_train_epoch_end


class FitLoop(FitLoopProgress):
    """The fit: its progress, limits and resume plan, and the loop over epochs.

    Args:
        trainer: the Trainer it runs for.
        max_epochs: the most epochs (-1: no limit).
        min_epochs: ``should_stop`` is ignored until this many epochs ran.
        max_steps: the most optimizer steps (-1: no limit).
        min_steps: ``should_stop`` is ignored until this many steps ran.
        detect_anomaly: run the epochs under ``torch.autograd.set_detect_anomaly``.
    """

    def __init__(
        self,
        trainer: Trainer,
        *,
        max_epochs: int,
        min_epochs: int | None,
        max_steps: int,
        min_steps: int | None,
        detect_anomaly: bool = False,
    ) -> None:
        super().__init__(max_epochs=max_epochs, min_epochs=min_epochs, max_steps=max_steps, min_steps=min_steps)
        self.trainer = trainer
        self.detect_anomaly = detect_anomaly
        self._epoch_loop = TrainingEpochLoop(trainer, self)
        self._loaded_at = -math.inf  # the epoch of the last train loader load (reload_dataloaders_every_n_epochs)
        self._said: set[str] = set()  # the info messages already logged (stop_deferred)

    @property
    def epoch_loop(self) -> TrainingEpochLoop:
        """The loop of one training epoch (Lightning's ``fit_loop.epoch_loop``)."""
        return self._epoch_loop

    @property
    def epoch_progress(self) -> EpochProgress:
        """Lightning's ``fit_loop.epoch_progress`` from the counters (an epoch is started while its batches run)."""
        processed, completed = self.epochs_processed, self.epochs_completed
        in_epoch = processed == completed and self.trainer._driver.state.startswith(_IN_EPOCH)
        started = processed + 1 if in_epoch else processed
        counts = Tracker(ready=started, started=started, processed=processed, completed=completed)
        return EpochProgress(total=counts, current=counts)

    @property
    def done(self) -> bool:
        """Whether the fit runs no further epoch (Lightning's ``_FitLoop.done``)."""
        t = self.trainer
        reason = self.fit_stop_reason(t.num_training_batches, t.should_stop)
        if reason is None:
            return False
        # Lightning logs the reason each time done is asked and true (once per fit as the loop asks)
        if reason is SHOULD_STOP_REASON:
            rank_zero_debug(reason)
        else:
            rank_zero_info(reason)
        return True

    def stop_deferred(self) -> None:
        """``should_stop`` is set before ``min_epochs``/``min_steps``: say so once (Lightning's epoch loop)."""
        message = (
            f"Trainer was signaled to stop but the required `min_epochs={self.parsed_min_epochs()!r}` or"
            f" `min_steps={self.min_steps!r}` has not been met. Training will continue..."
        )
        if message not in self._said:  # Lightning's WarningCache: each message once per loop
            self._said.add(message)
            rank_zero_info(message)

    # ------------------------------------------------------------------ the fit

    def run(self, ckpt_path: str | None) -> None:
        """``trainer.fit``: setup, sanity check, epochs, teardown (spec 3.1).

        Args:
            ckpt_path: a checkpoint to resume from (already read and checked).
        """
        t = self.trainer
        fire = t._driver.fire
        t._attach_model_callbacks(fire(ev.ENTRY["fit"]))
        self.resume = None
        fire(ev.PREPARE_DATA)
        fire(ev.SETUP, TrainerFn.FITTING)
        checkpoint = t._checkpoints.restore_start(ckpt_path) if ckpt_path is not None else None
        t._results.reset_run()
        t._eval_steps.reset()
        module = t.lightning_module
        assert module is not None
        # the declared strategy_setup action: to the device and, under DDP, the wrapper (Lightning's strategy.setup)
        t._configure_optimizers(fire(ev.CONFIGURE_OPTIMIZERS))
        fire(ev.FIT_START)
        t._log_hyperparameters()
        if checkpoint is not None:
            t._checkpoints.restore_training_state(checkpoint)
            checkpoint = None  # release memory, as Lightning does
        module.zero_grad()
        if t.enable_validation and t.num_sanity_val_steps > 0 and not self.restarting:
            with isolate_rng():
                self._sanity_check()
        with torch.autograd.set_detect_anomaly(self.detect_anomaly):  # Lightning: the fit loop, not the sanity check
            self._train()
        self.resume = None
        self.restarting = False
        fire(ev.FIT_END)  # after the declared strategy_teardown action (unwrap, release the device)
        fire(ev.TEARDOWN, TrainerFn.FITTING)

    def _sanity_check(self) -> None:
        t = self.trainer
        fire = t._driver.fire
        t._results.reset_run()
        fire(ev.SANITY_CHECK_START)
        val = self.epoch_loop.val_loop
        loaders, counts = val.setup_data(sanity=True)
        if sum(counts) > 0:
            val.run(loaders, counts, RunningStage.SANITY_CHECKING)
        val.reset_progress()  # Lightning: the sanity check leaves no progress behind
        fire(ev.SANITY_CHECK_END)
        t._results.reset_run()  # metrics logged during the sanity check are discarded

    def _train(self) -> None:
        t = self.trainer
        fire = t._driver.fire
        if t.limit_train_batches == 0:
            return  # Lightning's "skip": the train dataloader is not even requested
        loader = self.setup_data()
        if self.done or t.num_training_batches == 0:
            return  # Lightning's "skip": no on_train_start, no epochs, no on_train_end
        if self.max_steps == -1:  # a restored end-of-epoch checkpoint: current_epoch catches up (on_run_start)
            self.epochs_completed = self.epochs_processed
        if t._should_check_val_epoch() and t.val_dataloaders is None:
            self.epoch_loop.val_loop.setup_data()
        fire(ev.TRAIN_START)
        epoch_loop = self.epoch_loop
        try:
            while not self.done:
                if reload_due(t.reload_dataloaders_every_n_epochs, t.current_epoch, self._loaded_at):
                    loader = self.setup_data()  # Lightning's fit loop on_advance_start, before on_train_epoch_start
                epoch_loop.run(loader)
                if self.restarting:
                    self.restarting = False
        finally:
            epoch_loop.release()  # (what it kept from epoch to epoch is this fit's: held no longer)
        fire(ev.TRAIN_END)

    def setup_data(self) -> Any:
        """Request the train loader (the ``train_dataloader`` event), count its batches, resolve ``val_check_batch``.

        Returns:
            The train loader.
        """
        t = self.trainer
        value = t._driver.fire(ev.TRAIN_DATALOADER)
        if "train" in t._explicit:
            value = t._explicit["train"]
        if t.overfit_batches > 0:
            value = sequential_loaders(as_loader_list(value, "train"), "train")[0]
        loader, count, shown = load_train(value, t.limit_train_batches, "limit_train_batches", t._loader_preparer())
        self._loaded_at = t.current_epoch
        t.train_dataloader = shown
        t.num_training_batches = count
        self.epoch_loop.resolve_val_check_batch()
        return loader

    # ------------------------------------------------------------------ checkpoint state

    def state_dict(self) -> dict[str, Any]:
        """The counters of :class:`FitLoopProgress` and the epoch loop's progress in Lightning's keys.

        Returns:
            Part of the checkpoint's ``loops["fit_loop"]`` (the checkpoint connector adds where
            in the fit it was taken, the RNG states and the loader's state).
        """
        return {**super().state_dict(), **self.epoch_loop.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote (or Lightning's loop, read into lightcycle's keys).

        Args:
            state: the checkpoint's ``loops["fit_loop"]``.
        """
        super().load_state_dict(state)
        self.epoch_loop.load_state_dict(state)
