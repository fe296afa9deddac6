"""RichProgressBar: Lightning 2.6's progress bar drawn with ``rich``, same arguments, tasks and text.

One ``rich`` live display for the run: a task per stage (sanity check, the training epoch,
validation, test, predict), each line ``description bar completed/total elapsed • remaining speed``
and, on the training task of a fit, the metrics text (``get_metrics``: ``v_num`` and what was
logged with ``prog_bar=True``). The display redraws from rich's thread at most ``refresh_rate``
times a second and only after a batch asked it to. ``rich`` (``pip install lightcycle[rich]``) is
imported when the first display starts, not when lightcycle is imported.

What a batch costs: the bar hands rich the batch count (and, training, the metrics: a read of
``trainer.progress_bar_metrics``, which converts tensors to numbers, a device sync on a GPU) only
when rich could draw them, at most once per ``1 / refresh_rate`` seconds, and always at a task's
last batch; between two hand-overs a batch records its count (one clock read). The count not
handed over yet is handed over before validation, at the epoch end, when an evaluation
dataloader or stage ends, on an exception and at teardown, so every frame the display leaves on
screen is Lightning's; a frame drawn in between shows a count (and metrics) at most one refresh
interval older. On a console that cannot show a live display (a file or a pipe: rich writes
only each display's last frame) the bar does not ask rich to render the frames in between at all.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from lightcycle.callbacks.progress import ProgressBar
from lightcycle.callbacks.rich_model_summary import require_rich
from lightcycle.core.batch_transfer import apply_to_collection

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import ProgressColumn, Task, TaskID
    from rich.style import Style

    from lightcycle.callbacks.rich_columns import CustomProgress, MetricsTextColumn
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost

# Lightning's `_RICH_AVAILABLE`: the rich bar (and the rich summary) need rich >= 10.2.2.
_MIN_RICH = (10, 2, 2)

# The clock that spaces the hand-overs to rich (a module global so that tests can drive it).
_clock = time.monotonic


@functools.cache
def rich_available() -> bool:
    """Whether ``rich`` >= 10.2.2 is installed (Lightning's condition for its rich defaults).

    Returns:
        True when the rich bar and summary can be used (and are then Lightning's defaults).
    """
    try:
        version = importlib.metadata.version("rich")
    except importlib.metadata.PackageNotFoundError:
        return False
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts) >= _MIN_RICH


@dataclass
class RichProgressBarTheme:
    """Styles of the bar's parts (rich style strings or ``Style`` objects), Lightning's defaults.

    Args:
        description: the task description (``Epoch 0/1``, ``Validation``, ...). Default ``""``.
        progress_bar: the bar while running. Default ``"#6206E0"``.
        progress_bar_finished: the finished bar. Default ``"#6206E0"``.
        progress_bar_pulse: the bar of a dataloader without a length. Default ``"#6206E0"``.
        batch_progress: ``completed/total``. Default ``""``.
        time: ``elapsed • remaining``. Default ``"dim"``.
        processing_speed: batches per second. Default ``"dim underline"``.
        metrics: the metrics text. Default ``"italic"``.
        metrics_text_delimiter: between two metrics. Default ``" "``.
        metrics_format: format spec of a metric value that is not a string. Default ``".3f"``.
    """

    description: str | Style = ""
    progress_bar: str | Style = "#6206E0"
    progress_bar_finished: str | Style = "#6206E0"
    progress_bar_pulse: str | Style = "#6206E0"
    batch_progress: str | Style = ""
    time: str | Style = "dim"
    processing_speed: str | Style = "dim underline"
    metrics: str | Style = "italic"
    metrics_text_delimiter: str = " "
    metrics_format: str = ".3f"


def _is_interactive() -> bool:
    # Lightning's `_IS_INTERACTIVE`: in a REPL the bar redraws at once instead of from its thread.
    # (Asked when a display starts, not at every redraw request.)
    return hasattr(sys, "ps1") or bool(sys.flags.interactive)


class RichProgressBar(ProgressBar):
    """Lightning's progress bar with `rich <https://github.com/Textualize/rich>`_ formatting.

    It keeps no state in checkpoints. Pickling or deep-copying it drops the display and console.

    Args:
        refresh_rate: redraws per second at most; ``0`` disables the display. Default 10 (rich's
            own ``refresh_per_second`` and the tqdm bar's 0.1 s ``mininterval``: each hand-over
            costs the training thread ~30-60 µs, so 100 a second took ~0.5% of a fast run).
        leave: keep each finished epoch's bar on screen (a new display per epoch). Default ``False``.
        theme: the styles (:class:`RichProgressBarTheme`). Default ``RichProgressBarTheme()``.
        console_kwargs: arguments of ``rich.reconfigure`` for the (global) console the bar draws on,
            e.g. ``{"file": stream, "width": 120}``. Default ``None`` (the console as it is).

    Raises:
        ModuleNotFoundError: ``rich`` is not installed (``pip install lightcycle[rich]``).
    """

    def __init__(
        self,
        refresh_rate: int = 10,
        leave: bool = False,
        theme: RichProgressBarTheme = RichProgressBarTheme(),  # noqa: B008 - Lightning's default (never mutated)
        console_kwargs: dict[str, Any] | None = None,
    ) -> None:
        require_rich(type(self).__name__)
        super().__init__()
        self._refresh_rate: int = refresh_rate
        self._leave: bool = leave
        self._console: Console | None = None
        self._console_kwargs = console_kwargs or {}
        self._enabled: bool = True
        self.progress: CustomProgress | None = None
        self.train_progress_bar_id: TaskID | None
        self.val_sanity_progress_bar_id: TaskID | None = None
        self.val_progress_bar_id: TaskID | None
        self.test_progress_bar_id: TaskID | None
        self.predict_progress_bar_id: TaskID | None
        self._reset_progress_bar_ids()
        self._metric_component: MetricsTextColumn | None = None
        self._progress_stopped: bool = False
        self.theme = theme
        # The time from which the next batch is handed to rich (training or evaluation: one display),
        # the training task's total (its last batch is always handed over) and the count of a
        # batch not handed over yet; the same for the current evaluation task (its id with the count).
        self._due: float = -math.inf
        self._train_total: int | float = math.inf
        self._train_pending: int | None = None
        self._eval_total: int | float = math.inf
        self._eval_pending: tuple[TaskID, int] | None = None
        self._eval_task: TaskID | None = None  # the task added for the current evaluation dataloader
        self._interactive = False

    @property
    def refresh_rate(self) -> float:
        return self._refresh_rate

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.refresh_rate > 0

    def _task(self, task_id: TaskID | None) -> Task:
        assert self.progress is not None
        assert task_id is not None
        return self.progress.tasks[task_id]

    @property
    def train_progress_bar(self) -> Task:
        """The rich task of the training epoch."""
        return self._task(self.train_progress_bar_id)

    @property
    def val_sanity_check_bar(self) -> Task:
        """The rich task of the sanity check."""
        return self._task(self.val_sanity_progress_bar_id)

    @property
    def val_progress_bar(self) -> Task:
        """The rich task of the current validation dataloader."""
        return self._task(self.val_progress_bar_id)

    @property
    def test_progress_bar(self) -> Task:
        """The rich task of the current test dataloader."""
        return self._task(self.test_progress_bar_id)

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _init_progress(self, trainer: RunHost) -> None:
        if self.is_enabled and (self.progress is None or self._progress_stopped):
            # deferred: heavy optional dependency rich
            from rich import get_console, reconfigure

            # deferred: heavy optional dependency rich (rich_columns imports it)
            from lightcycle.callbacks.rich_columns import CustomProgress, MetricsTextColumn

            self._reset_progress_bar_ids()
            reconfigure(**self._console_kwargs)
            self._console = get_console()
            # Another display left on the console (a previous run stopped by an exception) would
            # make rich refuse this one: clear it, as Lightning does (rich >= 14.1 keeps a stack).
            if hasattr(self._console, "_live_stack"):
                if len(self._console._live_stack) > 0:
                    self._console.clear_live()
            else:
                self._console.clear_live()
            self._metric_component = MetricsTextColumn(
                trainer, self.theme.metrics, self.theme.metrics_text_delimiter, self.theme.metrics_format
            )
            self.progress = CustomProgress(
                *self.configure_columns(trainer),
                self._metric_component,
                auto_refresh=True,
                refresh_per_second=self.refresh_rate if self.is_enabled else 1,
                disable=self.is_disabled,
                console=self._console,
            )
            self.progress.start()
            self._progress_stopped = False
            self._interactive = _is_interactive()
            self._due = -math.inf  # a new display: its first batch is handed over at once

    def refresh(self, hard: bool = False) -> None:
        """Redraw now (``hard`` or in a REPL), else ask the refresh thread to redraw at its next tick.

        Args:
            hard: draw in this thread now.
        """
        if self.progress:
            if hard or self._interactive:
                self.progress.refresh()
            else:
                self.progress.soft_refresh()

    def on_train_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._init_progress(trainer)

    def on_predict_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._init_progress(trainer)

    def on_test_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._init_progress(trainer)

    def on_validation_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        # A validation inside an epoch: the training task shows its last batch while it runs.
        self._flush_train(trainer, pl_module, metrics=True)
        self._init_progress(trainer)

    def on_sanity_check_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._init_progress(trainer)

    def on_sanity_check_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._flush_eval()
        if self.progress is not None and self.val_sanity_progress_bar_id is not None:
            self.progress.update(self.val_sanity_progress_bar_id, advance=0, visible=False)
        self.refresh()

    def on_train_epoch_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if self.is_disabled:
            return
        total_batches = self.total_train_batches
        train_description = self._get_train_description(trainer.current_epoch)
        if self.train_progress_bar_id is not None and self._leave:
            # leave=True: the finished epoch's display is stopped (its last frame stays) and a new one starts.
            self._stop_progress()
            self._init_progress(trainer)
        if self.progress is not None:
            if self.train_progress_bar_id is None:
                self.train_progress_bar_id = self._add_task(total_batches, train_description)
            else:
                self.progress.reset(
                    self.train_progress_bar_id, total=total_batches, description=train_description, visible=True
                )
        self._train_total = total_batches
        self._train_pending = None
        self.refresh()

    def _hide(self, task_id: TaskID | None) -> None:
        if task_id is not None:
            assert self.progress is not None
            self.progress.update(task_id, advance=0, visible=False)

    def on_validation_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.is_disabled or not self.has_dataloader_changed(dataloader_idx):
            return
        assert self.progress is not None
        self._flush_eval()  # the previous dataloader's last count
        # Each dataloader gets a new task, added hidden (as Lightning's; it shows once updated).
        total = self._eval_total = self.total_val_batches_current_dataloader
        if trainer.sanity_checking:
            self._hide(self.val_sanity_progress_bar_id)
            task = self.val_sanity_progress_bar_id = self._add_task(total, self.sanity_check_description, visible=False)
        else:
            self._hide(self.val_progress_bar_id)
            task = self.val_progress_bar_id = self._add_task(total, self.validation_description, visible=False)
        self._eval_task = task
        self.refresh()

    def _add_task(self, total_batches: int | float, description: str, visible: bool = True) -> TaskID:
        assert self.progress is not None
        return self.progress.add_task(
            f"[{self.theme.description}]{description}" if self.theme.description else description,
            total=total_batches,
            visible=visible,
        )

    def _initialize_train_progress_bar_id(self) -> None:
        total_batches = self.total_train_batches
        train_description = self._get_train_description(self.trainer.current_epoch)
        self.train_progress_bar_id = self._add_task(total_batches, train_description)
        self._train_total = total_batches

    def _update(self, progress_bar_id: TaskID | None, current: int, visible: bool = True, hard: bool = False) -> None:
        if self.progress is not None and self.is_enabled and progress_bar_id is not None:
            self.progress.update(progress_bar_id, completed=current, visible=visible)
            self.refresh(hard=hard)

    def on_validation_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._flush_eval()
        if self.is_enabled and self.val_progress_bar_id is not None and trainer.state.fn == "fit":
            self._hide(self.val_progress_bar_id)
            self.refresh()

    def on_validation_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._flush_eval()
        if trainer.state.fn == "fit":
            self._update_metrics(trainer, pl_module)
        self.reset_dataloader_idx_tracker()

    def on_test_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._flush_eval()
        self.reset_dataloader_idx_tracker()

    def on_predict_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._flush_eval()
        self.reset_dataloader_idx_tracker()

    def on_test_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.is_disabled or not self.has_dataloader_changed(dataloader_idx):
            return
        self._flush_eval()
        self._hide(self.test_progress_bar_id)
        total = self._eval_total = self.total_test_batches_current_dataloader
        self.test_progress_bar_id = self._eval_task = self._add_task(total, self.test_description)
        self.refresh()

    def on_predict_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.is_disabled or not self.has_dataloader_changed(dataloader_idx):
            return
        self._flush_eval()
        self._hide(self.predict_progress_bar_id)
        total = self._eval_total = self.total_predict_batches_current_dataloader
        self.predict_progress_bar_id = self._eval_task = self._add_task(total, self.predict_description)
        self.refresh()

    def on_train_batch_end(
        self, trainer: RunHost, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        current = batch_idx + 1
        # Why: rich's thread draws at most refresh_rate times a second, so handing it each batch's
        # metrics (a tensor-to-number conversion, a device sync) would pay for frames never drawn.
        # A batch can be inside the interval only after a hand-over (the bar enabled, its task there).
        now = _clock()
        if now < self._due and current != self._train_total:
            self._train_pending = current
            return
        if self.is_disabled:
            return  # nothing is drawn: no metrics are read
        if self.train_progress_bar_id is None:
            # A fit resumed mid-epoch starts without on_train_epoch_start's task.
            self._initialize_train_progress_bar_id()
        self._due = now + 1 / self.refresh_rate
        self._train_pending = None
        self._update(self.train_progress_bar_id, current)
        self._update_metrics(trainer, pl_module)
        self.refresh()

    def _flush_train(self, trainer: RunHost, pl_module: LightningModule, metrics: bool) -> None:
        """Hand rich the count of the last training batch if it was not handed over (and the metrics)."""
        current = self._train_pending
        if current is None:
            return
        self._train_pending = None
        self._update(self.train_progress_bar_id, current)
        if metrics:
            self._update_metrics(trainer, pl_module)

    def _update_eval(self, task_id: TaskID | None, current: int) -> None:
        """An evaluation batch's count, handed to rich as a training batch's is (see on_train_batch_end)."""
        now = _clock()
        if now < self._due and current != self._eval_total:
            self._eval_pending = None if task_id is None else (task_id, current)
            return
        self._due = now + 1 / self.refresh_rate
        self._eval_pending = None
        self._update(task_id, current)

    def _flush_eval(self) -> None:
        """Hand rich the count of the last evaluation batch if it was not handed over."""
        pending = self._eval_pending
        if pending is not None:
            self._eval_pending = None
            self._update(*pending)

    def on_train_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._flush_train(trainer, pl_module, metrics=False)  # (the metrics are read just below)
        self._update_metrics(trainer, pl_module)
        self.refresh()

    def on_validation_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        current = batch_idx + 1
        # Inside the refresh interval (only after a hand-over: the bar enabled, its task added at the
        # dataloader's start) the count waits, as a training batch's does, before anything else.
        task = self._eval_task
        if _clock() < self._due and current != self._eval_total and task is not None:
            self._eval_pending = (task, current)
            return
        if self.is_disabled:
            return
        if trainer.sanity_checking:
            self._update_eval(self.val_sanity_progress_bar_id, current)
        else:
            self._update_eval(self.val_progress_bar_id, current)

    def on_test_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.is_disabled:
            self._update_eval(self.test_progress_bar_id, batch_idx + 1)

    def on_predict_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.is_disabled:
            self._update_eval(self.predict_progress_bar_id, batch_idx + 1)

    def _get_train_description(self, current_epoch: int) -> str:
        train_description = f"Epoch {current_epoch}"
        if self.trainer.max_epochs is not None:
            train_description += f"/{self.trainer.max_epochs - 1}"
        if len(self.validation_description) > len(train_description):
            # Padded to the validation description's length, so that the line does not flicker.
            train_description = f"{train_description:{len(self.validation_description)}}"
        return train_description

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            # The next stage starts a new display.
            self._progress_stopped = True

    def _reset_progress_bar_ids(self) -> None:
        self.train_progress_bar_id = None
        self.val_sanity_progress_bar_id = None
        self.val_progress_bar_id = None
        self.test_progress_bar_id = None
        self.predict_progress_bar_id = None
        self._eval_task = None

    def get_metrics(self, trainer: RunHost, pl_module: LightningModule) -> dict[str, Any]:
        """The base bar's metrics with every tensor (also nested, from an override) as a Python number.

        Args:
            trainer: the running trainer.
            pl_module: the module.

        Returns:
            Name to value (``v_num`` first, then ``trainer.progress_bar_metrics``).
        """
        items = super().get_metrics(trainer, pl_module)
        if type(items) is dict:
            # Why: the base's dict holds plain numbers and the logger version; walking it as a
            # nested collection costs several times the conversion. Anything else: the walk.
            plain: dict[str, Any] = {}
            for key, value in items.items():
                kind = type(value)
                if kind is float or kind is int or kind is str:
                    plain[key] = value
                elif kind is torch.Tensor:
                    plain[key] = value.item()
                else:
                    break
            else:
                return plain
        return apply_to_collection(items, lambda x: isinstance(x, torch.Tensor), lambda x: x.item())  # type: ignore[no-any-return]

    def _update_metrics(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if not self.is_enabled or self._metric_component is None:
            return
        self._metric_component.update(self.get_metrics(trainer, pl_module))

    def teardown(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        self._flush_train(trainer, pl_module, metrics=False)
        self._flush_eval()
        self._stop_progress()

    def on_exception(self, trainer: RunHost, pl_module: LightningModule, exception: BaseException) -> None:
        # The last finished batch's count; not the metrics, which now hold the failed batch's values.
        self._flush_train(trainer, pl_module, metrics=False)
        self._flush_eval()
        self._stop_progress()

    def configure_columns(self, trainer: RunHost) -> list[ProgressColumn]:
        """The columns before the metrics text (override to change them).

        Args:
            trainer: the running trainer.

        Returns:
            Description, bar, ``completed/total``, ``elapsed • remaining`` and speed columns.
        """
        # deferred: heavy optional dependency rich
        from rich.progress import TextColumn

        # deferred: heavy optional dependency rich (rich_columns imports it)
        from lightcycle.callbacks.rich_columns import (
            BatchesProcessedColumn,
            CustomBarColumn,
            CustomTimeColumn,
            ProcessingSpeedColumn,
        )

        return [
            TextColumn("[progress.description]{task.description}"),
            CustomBarColumn(
                complete_style=self.theme.progress_bar,
                finished_style=self.theme.progress_bar_finished,
                pulse_style=self.theme.progress_bar_pulse,
            ),
            BatchesProcessedColumn(style=self.theme.batch_progress),
            CustomTimeColumn(style=self.theme.time),
            ProcessingSpeedColumn(style=self.theme.processing_speed),
        ]

    def __getstate__(self) -> dict[str, Any]:
        # The console and the display hold thread locks, which cannot be pickled.
        state = self.__dict__.copy()
        state["progress"] = None
        state["_console"] = None
        return state
