"""The ``rich`` pieces of :class:`~lightcycle.callbacks.rich_progress.RichProgressBar`, as Lightning 2.6's.

This module imports ``rich`` at its top, so it is imported only when a rich bar first draws
(``rich`` is the optional extra ``lightcycle[rich]``). Its classes are Lightning's: a bar column and
a task that accept an infinite total (an ``IterableDataset`` without a length), a ``Progress``
whose refresh thread redraws only when asked (``soft_refresh``), and the batches, time, speed and
metrics columns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from rich.console import RenderableType
from rich.live import _RefreshThread as _RichRefreshThread
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID
from rich.progress_bar import ProgressBar as _RichProgressBar
from rich.style import Style
from rich.text import Text

from lightcycle.callbacks.rich_progress import RichProgressBar

if TYPE_CHECKING:
    from lightcycle.runtime.host import RunHost


class CustomBarColumn(BarColumn):
    """A ``BarColumn`` that pulses for a dataloader without a length (an infinite total)."""

    def render(self, task: Task) -> _RichProgressBar:
        """The bar widget of ``task``.

        Args:
            task: the task drawn.

        Returns:
            Rich's bar, pulsing while the task has not started or its remaining count is infinite.
        """
        assert task.total is not None
        assert task.remaining is not None
        return _RichProgressBar(
            total=max(0, task.total),
            completed=max(0, task.completed),
            width=None if self.bar_width is None else max(1, self.bar_width),
            pulse=not task.started or not math.isfinite(task.remaining),
            animation_time=task.get_time(),
            style=self.style,
            complete_style=self.complete_style,
            finished_style=self.finished_style,
            pulse_style=self.pulse_style,
        )


@dataclass
class CustomInfiniteTask(Task):
    """A task with an infinite total: no time remaining is estimated."""

    @property
    def time_remaining(self) -> float | None:
        return None


class _RefreshThread(_RichRefreshThread):
    """Rich's refresh thread, redrawing only after :meth:`CustomProgress.soft_refresh` asked it to."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.refresh_cond = False
        super().__init__(*args, **kwargs)

    def run(self) -> None:
        while not self.done.is_set():
            if self.refresh_cond:
                with self.live._lock:
                    self.live.refresh()
                self.refresh_cond = False
            time.sleep(1 / self.refresh_per_second)


class CustomProgress(Progress):
    """Rich's ``Progress`` with Lightning's refresh thread and tasks of infinite total.

    On a console that cannot show a live display (a file, a pipe, a dumb terminal; not nested in
    another display) rich writes only the last frame, when the display stops, and renders that
    frame then: the frames in between are not rendered at all (``refresh`` and ``soft_refresh``
    do nothing while it runs), which leaves the output as it is.
    """

    # Whether frames rendered while the display runs can be seen (decided when it starts).
    _draws: bool = True

    def start(self) -> None:
        """Start the display, with the refresh thread that redraws on request."""
        if self.live.auto_refresh:
            self.live._refresh_thread = _RefreshThread(self.live, self.live.refresh_per_second)
            self.live.auto_refresh = False
        super().start()
        live = self.live
        console = live.console
        # rich's Live.refresh shows a frame only in Jupyter, on a capable terminal, or through the
        # display it is nested in (rich >= 14.1); otherwise only once stopped.
        self._draws = bool(getattr(live, "_nested", False)) or bool(
            console.is_jupyter or (console.is_terminal and not console.is_dumb_terminal)
        )
        if self.live._refresh_thread:
            self.live.auto_refresh = True
            self.live._refresh_thread.start()

    def refresh(self) -> None:
        """Render the display now, when a frame rendered now can be seen."""
        if self._draws:
            super().refresh()

    def stop(self) -> None:
        """Stop the display and join the refresh thread (the final frame is drawn here)."""
        refresh_thread = self.live._refresh_thread
        super().stop()
        if refresh_thread:
            refresh_thread.stop()
            refresh_thread.join()

    def soft_refresh(self) -> None:
        """Ask the refresh thread to redraw at its next tick (the per-batch path never draws itself)."""
        if self._draws and self.live.auto_refresh and isinstance(self.live._refresh_thread, _RefreshThread):
            self.live._refresh_thread.refresh_cond = True

    def add_task(
        self,
        description: str,
        start: bool = True,
        total: float | None = 100.0,
        completed: int = 0,
        visible: bool = True,
        **fields: Any,
    ) -> TaskID:
        """Add a task; an infinite ``total`` makes a :class:`CustomInfiniteTask`.

        Args:
            description: the task's description (rich markup).
            start: start the task's clock now.
            total: the number of batches (``inf`` when unknown).
            completed: batches done already.
            visible: draw the task.
            **fields: extra task fields.

        Returns:
            The new task's id.
        """
        assert total is not None
        if not math.isfinite(total):
            task = CustomInfiniteTask(
                self._task_index,
                description,
                total,
                completed,
                visible=visible,
                fields=fields,
                _get_time=self.get_time,
                _lock=self._lock,
            )
            return self.add_custom_task(task)
        return super().add_task(description, start, total, completed, visible, **fields)

    def add_custom_task(self, task: CustomInfiniteTask, start: bool = True) -> TaskID:
        """Add an already built task.

        Args:
            task: the task.
            start: start its clock now.

        Returns:
            Its id.
        """
        with self._lock:
            self._tasks[self._task_index] = task
            if start:
                self.start_task(self._task_index)
            new_task_index = self._task_index
            self._task_index = TaskID(int(self._task_index) + 1)
        self.refresh()
        return new_task_index


class CustomTimeColumn(ProgressColumn):
    """``elapsed • remaining``, redrawn at most twice a second so that it does not jitter."""

    max_refresh = 0.5

    def __init__(self, style: str | Style) -> None:
        self.style = style
        super().__init__()

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        remaining = task.time_remaining
        elapsed_delta = "-:--:--" if elapsed is None else str(timedelta(seconds=int(elapsed)))
        remaining_delta = "-:--:--" if remaining is None else str(timedelta(seconds=int(remaining)))
        return Text(f"{elapsed_delta} • {remaining_delta}", style=self.style)


class BatchesProcessedColumn(ProgressColumn):
    """``completed/total`` batches (``--`` for an infinite total)."""

    def __init__(self, style: str | Style) -> None:
        self.style = style
        super().__init__()

    def render(self, task: Task) -> RenderableType:
        total = task.total if task.total != float("inf") else "--"
        return Text(f"{int(task.completed)}/{total}", style=self.style)


class ProcessingSpeedColumn(ProgressColumn):
    """Batches per second."""

    def __init__(self, style: str | Style) -> None:
        self.style = style
        super().__init__()

    def render(self, task: Task) -> RenderableType:
        task_speed = f"{task.speed:>.2f}" if task.speed is not None else "0.00"
        return Text(f"{task_speed}it/s", style=self.style)


class MetricsTextColumn(ProgressColumn):
    """The metrics text (``name: value``), drawn on the training task of a fit only.

    The bar hands it the metrics (:meth:`update`) from the training thread; :meth:`render` runs in
    rich's refresh thread and only reads them, so it never asks the trainer for metrics itself.
    """

    def __init__(self, trainer: RunHost, style: str | Style, text_delimiter: str, metrics_format: str) -> None:
        self._trainer = trainer
        self._tasks: dict[int | TaskID, Any] = {}
        self._current_task_id: int | TaskID = 0
        self._metrics: dict[str | Style, Any] = {}
        self._style = style
        self._text_delimiter = text_delimiter
        self._metrics_format = metrics_format
        super().__init__()

    def update(self, metrics: dict[Any, Any]) -> None:
        """Set the metrics drawn from now on.

        Args:
            metrics: name to value, as the bar's ``get_metrics`` returns them.
        """
        self._metrics = metrics

    def render(self, task: Task) -> Text:
        bar = self._trainer.progress_bar_callback
        assert isinstance(bar, RichProgressBar)
        if self._trainer.state.fn != "fit" or self._trainer.sanity_checking or bar.train_progress_bar_id != task.id:
            return Text()
        if self._trainer.training and task.id not in self._tasks:
            # A new epoch's task (leave=True): the previous task keeps the text it last drew.
            self._tasks[task.id] = "None"
            if self._renderable_cache and self._current_task_id in self._renderable_cache:
                self._current_task_id = cast(TaskID, self._current_task_id)
                self._tasks[self._current_task_id] = self._renderable_cache[self._current_task_id][1]
            self._current_task_id = task.id
        if self._trainer.training and task.id != self._current_task_id:
            return cast(Text, self._tasks[task.id])

        text = self._text_delimiter.join(self._generate_metrics_texts())
        return Text(text, justify="left", style=self._style)

    def _generate_metrics_texts(self) -> Generator[str, None, None]:
        for name, value in self._metrics.items():
            if not isinstance(value, str):
                try:
                    value = f"{value:{self._metrics_format}}"
                except (TypeError, ValueError):
                    value = str(value)
            yield f"{name}: {value}"
