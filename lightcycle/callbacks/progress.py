"""ProgressBar: the base class of progress bars, with Lightning 2.6's totals and descriptions.

The bars: ``RichProgressBar`` (:mod:`lightcycle.callbacks.rich_progress`), the default when
``rich`` is installed, else ``TQDMProgressBar`` (:mod:`lightcycle.callbacks.tqdm_progress`), as
Lightning chooses.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from lightcycle.callbacks.callback import Callback

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost


class ProgressBar(Callback):
    """Base class of progress bars (``trainer.progress_bar_callback``), as Lightning's.

    Subclasses implement :meth:`disable`, :meth:`enable` and draw in the hooks they need;
    the ``total_*`` properties say how many batches the current run or dataloader has.
    """

    def __init__(self) -> None:
        self._trainer: RunHost | None = None
        self._current_eval_dataloader_idx: int | None = None

    @property
    def trainer(self) -> RunHost:
        """The trainer this bar was set up with (at ``setup``)."""
        if self._trainer is None:
            raise TypeError(f"The `{self.__class__.__name__}._trainer` reference has not been set yet.")
        return self._trainer

    @property
    def sanity_check_description(self) -> str:
        return "Sanity Checking"

    @property
    def train_description(self) -> str:
        return "Training"

    @property
    def validation_description(self) -> str:
        return "Validation"

    @property
    def test_description(self) -> str:
        return "Testing"

    @property
    def predict_description(self) -> str:
        return "Predicting"

    @property
    def total_train_batches(self) -> int | float:
        """Training batches this epoch (fewer when ``max_steps`` ends it first; ``inf`` if unknown)."""
        t = self.trainer
        if t.max_epochs == -1 and t.max_steps is not None and t.max_steps > 0:
            return min(t.num_training_batches, t.max_steps - t.global_step)
        return t.num_training_batches

    def _current(self, batches: Any) -> int | float:
        if isinstance(batches, list):
            assert self._current_eval_dataloader_idx is not None
            return batches[self._current_eval_dataloader_idx]  # type: ignore[no-any-return]
        return batches  # type: ignore[no-any-return]

    @property
    def total_val_batches_current_dataloader(self) -> int | float:
        """Batches of the current validation (or sanity-check) dataloader."""
        t = self.trainer
        return self._current(t.num_sanity_val_batches if t.sanity_checking else t.num_val_batches)

    @property
    def total_test_batches_current_dataloader(self) -> int | float:
        """Batches of the current test dataloader."""
        return self._current(self.trainer.num_test_batches)

    @property
    def total_predict_batches_current_dataloader(self) -> int | float:
        """Batches of the current predict dataloader."""
        return self._current(self.trainer.num_predict_batches)

    @property
    def total_val_batches(self) -> int | float:
        """Validation batches of all dataloaders this epoch (0 when this epoch does not validate)."""
        t = self.trainer
        if not t._should_check_val_epoch():
            return 0
        return sum(t.num_val_batches) if isinstance(t.num_val_batches, list) else t.num_val_batches

    def has_dataloader_changed(self, dataloader_idx: int) -> bool:
        """Record ``dataloader_idx`` as current; True when it differs from the previous one."""
        old = self._current_eval_dataloader_idx
        self._current_eval_dataloader_idx = dataloader_idx
        return old != dataloader_idx

    def reset_dataloader_idx_tracker(self) -> None:
        self._current_eval_dataloader_idx = None

    @property
    def is_enabled(self) -> bool:
        """Whether the bar draws (Lightning's base: always; the bars say when they are off)."""
        return True

    @property
    def is_disabled(self) -> bool:
        """``not is_enabled``, for every bar (Lightning's base defines it once too)."""
        return not self.is_enabled

    def disable(self) -> None:
        """Stop drawing (subclasses implement it)."""
        raise NotImplementedError

    def enable(self) -> None:
        """Draw again (subclasses implement it)."""
        raise NotImplementedError

    def print(self, *args: Any, **kwargs: Any) -> None:
        """Print without breaking the bar (subclasses write through their bar)."""
        print(*args, **kwargs)

    def setup(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        self._trainer = trainer
        if not trainer.is_global_zero:
            self.disable()

    def get_metrics(self, trainer: RunHost, pl_module: LightningModule) -> dict[str, Any]:
        """The values shown: the logger version as ``v_num``, then ``trainer.progress_bar_metrics``.

        Args:
            trainer: the running trainer.
            pl_module: the module.

        Returns:
            Name to plain Python value.
        """
        standard = get_standard_metrics(trainer)
        pbar: dict[str, Any] = {}
        for key, value in trainer.progress_bar_metrics.items():
            pbar[key] = value.item() if hasattr(value, "item") else value
        duplicates = list(standard.keys() & pbar.keys())
        if duplicates:
            warnings.warn(
                f"The progress bar already tracks a metric with the name(s) '{', '.join(duplicates)}' and"
                f" `self.log('{duplicates[0]}', ..., prog_bar=True)` will overwrite this value. "
                " If this is undesired, change the name or override `get_metrics()` in the progress bar callback.",
                stacklevel=2,
            )
        return {**standard, **pbar}


def get_standard_metrics(trainer: Any) -> dict[str, int | str]:
    """Lightning's standard bar items: ``v_num``, the loggers' version (a string's last 4 characters).

    Args:
        trainer: the running trainer.

    Returns:
        ``{"v_num": version}``, or empty without loggers or a version.
    """
    items: dict[str, int | str] = {}
    loggers = trainer.loggers
    if loggers:
        if len(loggers) == 1:
            version = getattr(loggers[0], "version", None)
        else:  # Lightning's `_version`: the distinct versions joined with "_"
            version = "_".join(dict.fromkeys(str(getattr(lg, "version", None)) for lg in loggers))
        if version not in ("", None):
            items["v_num"] = version[-4:] if isinstance(version, str) else version
    return items
