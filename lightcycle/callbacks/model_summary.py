"""ModelSummary: print Lightning 2.6's summary table of the module when fit starts (on by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightcycle.callbacks.callback import Callback
from lightcycle.core.model_summary import _format_summary_table, summarize

if TYPE_CHECKING:
    from lightcycle.core.model_summary import ModelSummary as Summary
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost


class ModelSummary(Callback):
    """Print the module's layer table (:mod:`lightcycle.core.model_summary`) at ``on_fit_start``.

    Lightning sends the table to its ``logging`` logger at INFO level (shown on the console by the
    handler Lightning installs); lightcycle installs no handler, so it prints the table to stdout.

    Args:
        max_depth: deepest layer nesting listed; 0 turns the summary off, -1 lists all. Default 1.
        **summarize_kwargs: passed on to :meth:`summarize` (for subclasses that override it).
    """

    def __init__(self, max_depth: int = 1, **summarize_kwargs: Any) -> None:
        self._max_depth: int = max_depth
        self._summarize_kwargs: dict[str, Any] = summarize_kwargs

    def on_fit_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if not self._max_depth:
            return
        summary = self._summary(trainer, pl_module)
        if trainer.is_global_zero:
            self.summarize(
                summary._get_summary_data(),
                summary.total_parameters,
                summary.trainable_parameters,
                summary.model_size,
                summary.total_training_modes,
                total_flops=summary.total_flops,
                **self._summarize_kwargs,
            )

    def _summary(self, trainer: RunHost, pl_module: LightningModule) -> Summary:
        return summarize(pl_module, max_depth=self._max_depth)

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        """Print the table (override to show it elsewhere, as RichModelSummary does).

        Args:
            summary_data: the columns, ``(header, cells)``.
            total_parameters: all parameters.
            trainable_parameters: those with ``requires_grad``.
            model_size: estimated size in MB.
            total_training_modes: ``{"train": n, "eval": m}`` submodule counts.
            total_flops: FLOPs of the example input's forward (0 without one).
            **summarize_kwargs: unused here.
        """
        table = _format_summary_table(
            total_parameters, trainable_parameters, model_size, total_training_modes, total_flops, *summary_data
        )
        print("\n" + table)
