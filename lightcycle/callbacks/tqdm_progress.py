"""TQDMProgressBar: Lightning 2.6's default bar, same arguments, bars, descriptions and refreshes.

One training bar for the whole fit, reset at each epoch (``leave=False``, the default) or a new bar
per epoch left on screen (``leave=True``); a sanity-check, validation, test and predict bar; all on
``sys.stdout`` with Lightning's ``bar_format`` and number padding. tqdm is imported when the first
bar is drawn, not when lightcycle is imported.

What a batch costs: Lightning redraws a bar (and, in training, reads ``get_metrics`` for the postfix,
converting the logged tensors: a device sync on a GPU) on every ``refresh_rate``-th batch. Here
such a batch sets the bar's count, and redraws it only when tqdm's own ``mininterval`` (0.1 s by
default) has passed since the bar last drew, or at its last batch; the epoch end sets the postfix
and redraws as Lightning's does, so the lines a bar leaves are Lightning's. A bar created with
``mininterval=0`` redraws on every such batch, exactly as Lightning's.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from lightcycle.callbacks.progress import ProgressBar

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost

_PAD_SIZE = 5


@functools.cache
def _tqdm_class() -> type[tqdm[Any]]:
    """Lightning's ``Tqdm``: floats and strings padded with zeros so the bar does not flicker."""
    base: type[tqdm[Any]] = tqdm
    if importlib.util.find_spec("ipywidgets") is not None:
        # deferred: heavy optional dependency ipywidgets (tqdm.auto imports it, for notebooks)
        from tqdm.auto import tqdm as auto_tqdm

        base = auto_tqdm

    class Tqdm(base):  # type: ignore[misc]
        @staticmethod
        def format_num(n: int | float | str) -> str:
            should_be_padded = isinstance(n, (float, str))
            if not isinstance(n, str):
                n = base.format_num(n)
            assert isinstance(n, str)
            if should_be_padded and "e" not in n:
                if "." not in n and len(n) < _PAD_SIZE:
                    try:
                        _ = float(n)
                    except ValueError:
                        return n
                    n += "."
                n += "0" * (_PAD_SIZE - len(n))
            return n

    return Tqdm


def Tqdm(*args: Any, **kwargs: Any) -> tqdm[Any]:
    """A bar of Lightning's ``Tqdm`` class (a tqdm subclass with padded numbers)."""
    return _tqdm_class()(*args, **kwargs)


def convert_inf(x: int | float | None) -> int | float | None:
    """tqdm takes no inf/nan totals: ``None`` for those."""
    if x is None or math.isinf(x) or math.isnan(x):
        return None
    return x


def _draw_due(bar: tqdm[Any], current: int) -> bool:
    """Set ``bar``'s count to ``current``; True when the bar should redraw now.

    tqdm's own rule decides: at least ``bar.mininterval`` seconds (tqdm's clock) since the bar
    last drew, or the bar's last batch. A due draw is recorded in ``bar.last_print_t``, as tqdm's
    ``update`` records its own.
    """
    if bar.disable:
        return False
    bar.n = current  # so that a draw forced elsewhere (a print through the bar, close) is current
    if current == bar.total:
        return True
    now = bar._time()
    if now - bar.last_print_t < bar.mininterval:
        return False
    bar.last_print_t = now
    return True


class TQDMProgressBar(ProgressBar):
    """Lightning's default progress bar.

    Args:
        refresh_rate: redraw every this many batches (and at each bar's last batch); ``0`` disables
            the bars. Default 1. With the environment variable ``TQDM_MINITERS`` set, at least that.
        process_position: offset the bars by ``2 * process_position`` lines. Default 0.
        leave: keep each finished epoch's bar on screen (a new bar per epoch). Default ``False``
            (one training bar, reset each epoch).
        refresh_interval: deprecated (lightcycle before 0.2): also wait this many seconds between
            redraws. Use ``refresh_rate``.
    """

    BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"

    def __init__(
        self,
        refresh_rate: int = 1,
        process_position: int = 0,
        leave: bool = False,
        *,
        refresh_interval: float | None = None,
    ) -> None:
        super().__init__()
        if refresh_interval is not None:
            warnings.warn(
                "TQDMProgressBar(refresh_interval=...) is deprecated: it is lightcycle's own argument. Use "
                "Lightning's `refresh_rate` (batches between redraws).",
                DeprecationWarning,
                stacklevel=2,
            )
        self._refresh_rate = self._resolve_refresh_rate(refresh_rate)
        self._refresh_interval = refresh_interval
        self._last_draw = -math.inf
        self._process_position = process_position
        self._enabled = True
        self._train_progress_bar: tqdm[Any] | None = None
        self._val_progress_bar: tqdm[Any] | None = None
        self._test_progress_bar: tqdm[Any] | None = None
        self._predict_progress_bar: tqdm[Any] | None = None
        self._leave = leave

    def __getstate__(self) -> dict[str, Any]:
        # Bars hold a stream: a pickled or deep-copied callback gets none.
        return {k: None if isinstance(v, tqdm) else v for k, v in vars(self).items()}

    def _get(self, attr: str) -> tqdm[Any]:
        bar: tqdm[Any] | None = getattr(self, attr)
        if bar is None:
            raise TypeError(f"The `{self.__class__.__name__}.{attr}` reference has not been set yet.")
        return bar

    @property
    def train_progress_bar(self) -> tqdm[Any]:
        return self._get("_train_progress_bar")

    @train_progress_bar.setter
    def train_progress_bar(self, bar: tqdm[Any]) -> None:
        self._train_progress_bar = bar

    @property
    def val_progress_bar(self) -> tqdm[Any]:
        return self._get("_val_progress_bar")

    @val_progress_bar.setter
    def val_progress_bar(self, bar: tqdm[Any]) -> None:
        self._val_progress_bar = bar

    @property
    def test_progress_bar(self) -> tqdm[Any]:
        return self._get("_test_progress_bar")

    @test_progress_bar.setter
    def test_progress_bar(self, bar: tqdm[Any]) -> None:
        self._test_progress_bar = bar

    @property
    def predict_progress_bar(self) -> tqdm[Any]:
        return self._get("_predict_progress_bar")

    @predict_progress_bar.setter
    def predict_progress_bar(self, bar: tqdm[Any]) -> None:
        self._predict_progress_bar = bar

    @property
    def refresh_rate(self) -> int:
        return self._refresh_rate

    @property
    def process_position(self) -> int:
        return self._process_position

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.refresh_rate > 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _new_bar(self, desc: str, position: int, leave: bool, smoothing: bool) -> tqdm[Any]:
        extra: dict[str, Any] = {"smoothing": 0} if smoothing else {}
        return Tqdm(
            desc=desc,
            position=position,
            disable=self.is_disabled,
            leave=leave,
            dynamic_ncols=True,
            file=sys.stdout,
            bar_format=self.BAR_FORMAT,
            **extra,
        )

    def init_sanity_tqdm(self) -> tqdm[Any]:
        """The sanity-check bar (override to customise)."""
        return self._new_bar(self.sanity_check_description, 2 * self.process_position, False, False)

    def init_train_tqdm(self) -> tqdm[Any]:
        """The training bar (override to customise)."""
        return self._new_bar(self.train_description, 2 * self.process_position, True, True)

    def init_predict_tqdm(self) -> tqdm[Any]:
        """The predict bar (override to customise)."""
        return self._new_bar(self.predict_description, 2 * self.process_position, True, True)

    def init_validation_tqdm(self) -> tqdm[Any]:
        """The validation bar, under the training bar during fit (override to customise)."""
        has_main_bar = self.trainer.state.fn != "validate"
        return self._new_bar(
            self.validation_description, 2 * self.process_position + has_main_bar, not has_main_bar, False
        )

    def init_test_tqdm(self) -> tqdm[Any]:
        """The test bar (override to customise)."""
        return self._new_bar("Testing", 2 * self.process_position, True, False)

    def on_sanity_check_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self.val_progress_bar = self.init_sanity_tqdm()
        self.train_progress_bar = Tqdm(disable=True)  # a placeholder until training starts

    def on_sanity_check_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self.val_progress_bar.close()
        self.train_progress_bar.close()

    def on_train_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self.train_progress_bar = self.init_train_tqdm()

    def on_train_epoch_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if self._leave:
            self.train_progress_bar = self.init_train_tqdm()
        self._reset(self.train_progress_bar, self.total_train_batches, f"Epoch {trainer.current_epoch}")

    @staticmethod
    def _reset(bar: tqdm[Any], total: int | float, desc: str) -> None:
        bar.reset()
        bar.total = convert_inf(total)
        bar.initial = 0
        bar.set_description(desc)

    def on_train_batch_end(
        self, trainer: RunHost, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        n = batch_idx + 1
        bar = self._train_progress_bar
        if bar is not None and self._should_update(n, bar.total) and _draw_due(bar, n):
            bar.refresh()
            bar.set_postfix(self.get_metrics(trainer, pl_module))

    def on_train_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))
        if self._leave:
            self.train_progress_bar.close()

    def on_train_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self.train_progress_bar.close()

    def on_validation_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self.val_progress_bar = self.init_validation_tqdm()

    def on_validation_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.has_dataloader_changed(dataloader_idx):
            desc = self.sanity_check_description if trainer.sanity_checking else self.validation_description
            total = self.total_val_batches_current_dataloader
            self._reset(self.val_progress_bar, total, f"{desc} DataLoader {dataloader_idx}")

    def on_validation_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._step(self._val_progress_bar, batch_idx)

    def _step(self, bar: tqdm[Any] | None, batch_idx: int) -> None:
        n = batch_idx + 1
        if bar is not None and self._should_update(n, bar.total) and _draw_due(bar, n):
            bar.refresh()

    def on_validation_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self.val_progress_bar.close()
        self.reset_dataloader_idx_tracker()
        bar = self._train_progress_bar
        # (a disabled bar, the sanity check's placeholder among them, draws no postfix: none is read)
        if bar is not None and not bar.disable and trainer.state.fn == "fit":
            bar.set_postfix(self.get_metrics(trainer, pl_module))

    def on_test_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self.test_progress_bar = self.init_test_tqdm()

    def on_test_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.has_dataloader_changed(dataloader_idx):
            total = self.total_test_batches_current_dataloader
            self._reset(self.test_progress_bar, total, f"{self.test_description} DataLoader {dataloader_idx}")

    def on_test_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._step(self._test_progress_bar, batch_idx)

    def on_test_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self.test_progress_bar.close()
        self.reset_dataloader_idx_tracker()

    def on_predict_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self.predict_progress_bar = self.init_predict_tqdm()

    def on_predict_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.has_dataloader_changed(dataloader_idx):
            total = self.total_predict_batches_current_dataloader
            self._reset(self.predict_progress_bar, total, f"{self.predict_description} DataLoader {dataloader_idx}")

    def on_predict_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._step(self._predict_progress_bar, batch_idx)

    def on_predict_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self.predict_progress_bar.close()
        self.reset_dataloader_idx_tracker()

    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        """Write through the active bar, so that the bar is redrawn below the text."""
        bars = (self._train_progress_bar, self._val_progress_bar, self._test_progress_bar, self._predict_progress_bar)
        for bar in bars:
            if bar is not None and not bar.disable:
                bar.write(sep.join(map(str, args)), **kwargs)
                return

    def _should_update(self, current: int, total: int | float | None) -> bool:
        if not self.is_enabled or (current % self.refresh_rate != 0 and current != total):
            return False
        if self._refresh_interval is None or current == total:
            return True
        now = time.monotonic()  # the deprecated refresh_interval: also throttle by time
        if now - self._last_draw < self._refresh_interval:
            return False
        self._last_draw = now
        return True

    @staticmethod
    def _resolve_refresh_rate(refresh_rate: int) -> int:
        if os.getenv("COLAB_GPU") and refresh_rate == 1:
            return 20  # Lightning's: Colab's output cannot take a redraw per batch
        if "TQDM_MINITERS" in os.environ:
            return max(int(os.environ["TQDM_MINITERS"]), refresh_rate)
        return refresh_rate
