"""The training half of :class:`~lightcycle.custom_loop.loop_driver.LoopDriver`: epochs and the per-batch protocol.

``lc.epochs(...)`` and ``lc.epoch()`` open and close training epochs under Lightning's stopping
rules (:class:`~lightcycle.runtime.progress.FitLoopProgress`); one training batch is
``train_batch_start``, then the module's step (``training_step``) or your own (``backward``,
``optimizer_step``, through the precision plugin's scaler), then ``train_batch_end``, the same
bracket the Trainer's loop runs (:class:`~lightcycle.runtime.training.TrainBatch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from lightcycle._hooks import is_overridden
from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule
from lightcycle.custom_loop.base import DriverBase
from lightcycle.custom_loop.distributed import processed
from lightcycle.custom_loop.fused import batch_functions
from lightcycle.errors import MisconfigurationException, SIGTERMException
from lightcycle.runtime import steps
from lightcycle.runtime.data import set_sampler_epoch
from lightcycle.runtime.training import SKIPPED
from lightcycle.states import declaration as ev


class _Epochs:
    """``for epoch in lc.epochs(n)``: ends the previous epoch and starts the next on each step."""

    __slots__ = ("_done", "_lc", "_started")

    def __init__(self, lc: TrainingProtocol) -> None:
        self._lc = lc
        self._started = False
        self._done = False

    def __iter__(self) -> _Epochs:
        return self

    def __next__(self) -> int:
        if self._done:
            raise StopIteration
        lc = self._lc
        can_fire = lc._driver.can_fire
        if self._started:
            if can_fire(ev.TRAIN_EPOCH_END):
                lc.train_epoch_end()
        else:
            self._started = True
            if can_fire(ev.TRAIN_DATALOADER) and not can_fire(ev.TRAIN_EPOCH_START):  # (between epochs: a reload)
                lc._load_train()
        if lc._fit_done():
            self._done = True
            if can_fire(ev.TRAIN_END):
                lc.train_end()
            raise StopIteration
        lc.train_epoch_start()
        return lc.current_epoch


class TrainingProtocol(DriverBase):
    """The training methods of :class:`~lightcycle.custom_loop.loop_driver.LoopDriver` (a base of it)."""

    # -------------------------------------------------------------- fit: training epochs

    def _load_train(self) -> None:
        self.train_dataloader = processed(self, self._fire(ev.TRAIN_DATALOADER), "train")

    def train_start(self) -> None:
        """The train dataloader hook (once) and ``on_train_start``.

        Called by :meth:`epochs` and :meth:`train_epoch_start` when needed. As in the
        Trainer, the val dataloader hook runs here too when the module defines
        ``validation_step`` and its data source defines ``val_dataloader`` and no sanity
        check requested it.
        """
        if self._driver.can_fire(ev.TRAIN_EPOCH_START):
            # between epochs the train dataloader may be requested again (a reload), but training has started
            self._require(ev.TRAIN_START)
        self._require(ev.TRAIN_DATALOADER, ev.TRAIN_START)
        if self._driver.can_fire(ev.TRAIN_DATALOADER):
            self._load_train()
        if not self._val_requested and self._validation_defined():
            self.val_dataloaders = processed(self, self._fire(ev.VAL_DATALOADER), "val")
            self._val_requested = True
        self._fire(ev.TRAIN_START)

    @property
    def enable_validation(self) -> bool:
        """Whether the module defines ``validation_step`` and its data source ``val_dataloader``."""
        return self._validation_defined()

    def _validation_defined(self) -> bool:
        module = self.lightning_module
        if not is_overridden("validation_step", module, LightningModule):
            return False
        if self.datamodule is not None:
            return is_overridden("val_dataloader", self.datamodule, LightningDataModule)
        return is_overridden("val_dataloader", module, LightningModule)

    def train_end(self) -> None:
        """``on_train_end`` (:meth:`epochs` and :meth:`end` call it when needed)."""
        self._fire(ev.TRAIN_END)

    def epochs(
        self, max_epochs: int | None = None, *, min_epochs: int | None = None, max_steps: int = -1
    ) -> Iterator[int]:
        """``for epoch in lc.epochs(10):`` — training epochs until a limit or ``should_stop``.

        Each step ends the previous epoch (``on_train_epoch_end``) and starts the next
        (``on_train_epoch_start``); the first also starts training. It stops, firing
        ``on_train_end``, after ``max_epochs`` epochs, at ``max_steps`` optimizer steps,
        or when ``should_stop`` is set (by EarlyStopping, say) and ``min_epochs`` are
        done, as the Trainer stops. Leaving the loop with ``break`` leaves the epoch
        open; :meth:`end` (the end of the ``fit`` block) closes it.

        Args:
            max_epochs: the most epochs (``None`` or -1: no limit).
            min_epochs: ``should_stop`` is ignored until this many epochs are done.
            max_steps: the most optimizer steps (-1: no limit).

        Yields:
            The epoch index (``current_epoch``).
        """
        loop = self.fit_loop
        loop.max_epochs = -1 if max_epochs is None else max_epochs
        loop.min_epochs = min_epochs
        loop.max_steps = max_steps
        return _Epochs(self)

    def _fit_done(self) -> bool:
        return self.fit_loop.fit_done(self.num_training_batches, self.should_stop)

    def train_epoch_start(self) -> None:
        """``on_train_epoch_start`` (training starts first if it has not)."""
        self._require(ev.TRAIN_EPOCH_START, ev.TRAIN_START, ev.TRAIN_DATALOADER)
        if not self._driver.can_fire(ev.TRAIN_EPOCH_START):
            self.train_start()
        loop = self.fit_loop
        loop.batches_ready = 0
        loop.batch_idx = -1
        loop.is_last_batch = False
        set_sampler_epoch(self.train_dataloader, loop.epochs_processed)  # a distributed sampler's shuffle
        self._results.start_epoch("train")
        self._fire(ev.TRAIN_EPOCH_START)
        if self._batch_functions is None:  # (once per run: what they hold is fixed for the run)
            self._install_batch_functions()

    def _install_batch_functions(self) -> None:
        """Put the run's generated per-batch methods (:mod:`lightcycle.custom_loop.fused`) on the instance.

        Made at the first epoch's start, when the run's progress object and hooks are final.
        Each shadows the class's method of the same name, unless a subclass overrides that
        method or the instance has its own (a DDP run's agreeing ``train_batch_start``).
        """
        self._drop_batch_functions()
        mine = self.__dict__
        installed: dict[str, Callable[..., Any]] = {}
        for name, fn in batch_functions(self).items():
            method = getattr(TrainingProtocol, name)
            if name not in mine and getattr(type(self), name) is method:
                fn.__doc__ = method.__doc__  # (help(lc.backward) reads the method's)
                mine[name] = installed[name] = fn
        self._batch_functions = installed

    def train_epoch_end(self) -> None:
        """``on_train_epoch_end``; ``current_epoch`` advances after it."""
        self._require(ev.TRAIN_EPOCH_END)
        loop = self.fit_loop
        loop.epochs_processed += 1
        self._results.end_epoch("train")
        self._count_stepped()
        self._fire(ev.TRAIN_EPOCH_END)
        self._log_train_epoch(self._results.close_epoch("train"))
        loop.epochs_completed += 1
        if self.received_sigterm:  # spec 4.3: at the end of every training epoch
            raise SIGTERMException()

    @contextmanager
    def epoch(self) -> Iterator[int]:
        """``with lc.epoch() as epoch:`` — one training epoch (start and end)."""
        self.train_epoch_start()
        yield self.current_epoch
        self.train_epoch_end()

    # -------------------------------------------------------------- fit: one training batch

    def train_batch_start(self, batch: Any, batch_idx: int) -> Any:
        """Start a training batch: the batch-transfer hooks and ``on_train_batch_start``.

        Args:
            batch: the batch from your loader.
            batch_idx: its index in the epoch.

        Returns:
            The batch as the transfer hooks returned it (on :attr:`device`): use this one.
            ``None`` when the module's ``on_train_batch_start`` returned -1: the rest of
            the epoch is skipped, so leave the batch loop.
        """
        loop = self.fit_loop
        if self._stepped_pending:  # (_count_stepped, inlined: this runs before every batch)
            self._stepped_pending = False
            loop.batches_that_stepped += 1
        self._step_at_batch = loop.global_step
        if self.received_sigterm and loop.batches_ready:
            # Spec 4.3: after a batch's end-of-batch processing, including the validation
            # it triggered. A custom loop runs that validation after train_batch_end, so
            # the check is here, before the next batch fires anything.
            raise SIGTERMException()
        batch = self._bracket.begin(batch, batch_idx)
        if batch is SKIPPED:
            return None
        self._batch = batch  # (its index is fit_loop.batch_idx, set by the bracket)
        if self._own_train:
            self._own_step_event(batch, batch_idx)
        return batch

    def training_step(self, *, step: bool | None = None) -> dict[str, Any]:
        """Run the module's ``training_step`` on the current batch, as the Trainer does.

        Under automatic optimization: ``optimizer_step`` wrapping ``training_step``,
        ``on_before_zero_grad``/``optimizer_zero_grad``, the backward hooks and
        ``on_before_optimizer_step``, with the first of :attr:`optimizers`. Under manual
        optimization: ``training_step``, which calls ``manual_backward`` and
        ``opt.step()`` itself.

        Args:
            step: automatic optimization only: step the optimizer after this batch
                (default: when ``accumulate_grad_batches`` micro-batches are done).

        Returns:
            The ``outputs`` for :meth:`train_batch_end` (``{"loss": ...}``).

        Raises:
            MisconfigurationException: the module has no ``training_step`` (your loop
                is the step), or no optimizer.
        """
        if self._own_train:
            raise MisconfigurationException(
                f"{type(self.lightning_module).__name__} has no `training_step`, so your loop is the training step: "
                "call lc.backward(loss) and lc.optimizer_step(opt) instead of lc.training_step()."
            )
        batch, batch_idx = self._batch, self.fit_loop.batch_idx
        if not self.lightning_module.automatic_optimization:
            return steps.manual_outputs(self._own_step_event(batch, batch_idx))
        if not self.optimizers:
            raise MisconfigurationException(
                "lc.training_step() under automatic optimization needs an optimizer: pass lc.fit(optimizers=...) "
                "or define configure_optimizers in the module."
            )
        n = self.accumulate_grad_batches
        if step is None:
            step = (batch_idx + 1) % n == 0
        auto = self._automatic_step
        if auto is None or auto.lightning_optimizer is not self._lightning_optimizers[0] or auto.accumulate != n:
            auto = self._automatic_step = steps.AutomaticStep(
                self._driver.caller,
                self.fit_loop,
                self.optimizers[0],
                self._lightning_optimizers[0],
                accumulate=n,
                warn=self._warn_once,
                precision=self.precision_plugin,
                module=self.lightning_module,
            )
        return auto(batch, batch_idx, self.current_epoch, batch_idx % n == 0, step)

    def backward(self, loss: torch.Tensor) -> None:
        """``on_before_backward``, the module's ``backward`` (``loss.backward()``), ``on_after_backward``.

        Pass what should be differentiated (``scaler.scale(loss)`` with a GradScaler).
        """
        self._backward_event(loss)

    def optimizer_step(self, optimizer: Any, step: Callable[[Any], Any] | None = None) -> Any:
        """``on_before_optimizer_step``, then the step; ``global_step`` advances.

        Args:
            optimizer: the optimizer (callbacks receive it).
            step: how to step it, called with the optimizer (e.g. ``scaler.step``);
                default ``optimizer.step()``, or with a ``"16-mixed"`` precision the
                plugin's scaler: ``unscale_`` before the hooks, ``step`` and ``update`` after.

        Returns:
            What the step returned.
        """
        scaler = self.precision_plugin.scaler
        if scaler is not None and step is None:  # "16-mixed": unscale, hooks, scaler.step/update (Lightning's order)
            scaler.unscale_(optimizer)
            self._own_opt_step_event(optimizer)
            out = scaler.step(optimizer)
            scaler.update()
        else:
            self._own_opt_step_event(optimizer)
            out = optimizer.step() if step is None else step(optimizer)
        self.fit_loop.global_step += 1
        return out

    def train_batch_end(self, outputs: Any = None) -> None:
        """``on_train_batch_end`` for the current batch.

        Args:
            outputs: a loss tensor (callbacks receive ``{"loss": loss.detach()}``, as
                from the Trainer), a dict (passed as is), or ``None`` (``{}``).
        """
        kind = type(outputs)
        if kind is torch.Tensor:  # the common case, inlined: steps.manual_outputs's first branch
            outputs = {"loss": outputs.detach()}
        elif kind is not dict:
            outputs = steps.manual_outputs(outputs)
        # As the Trainer: a batch "stepped" when the optimizer stepped in it (always under
        # manual optimization); only those log step metrics, and they are counted after
        # the validation your loop may run next.
        stepped = self.fit_loop.global_step != self._step_at_batch or not self.lightning_module.automatic_optimization
        self._bracket.finish(outputs, self._batch, self.fit_loop.batch_idx, stepped)
        self._stepped_pending = stepped

    def _count_stepped(self) -> None:
        if self._stepped_pending:
            self._stepped_pending = False
            self.fit_loop.batches_that_stepped += 1

    def train_batch(self, batch: Any, batch_idx: int, *, step: bool | None = None) -> dict[str, Any] | None:
        """One training batch run by the module: :meth:`train_batch_start`,
        :meth:`training_step`, :meth:`train_batch_end`.

        Returns:
            The outputs, or ``None`` when the rest of the epoch is skipped (leave the loop).
        """
        if self.train_batch_start(batch, batch_idx) is None:
            return None
        outputs = self.training_step(step=step)
        self.train_batch_end(outputs)
        return outputs

    def lr_scheduler_step(self, scheduler: Any, metric: Any = None) -> None:
        """The module's ``lr_scheduler_step(scheduler, metric)`` (default: ``scheduler.step()``)."""
        self._fire(ev.LR_SCHEDULER_STEP, scheduler, metric)
