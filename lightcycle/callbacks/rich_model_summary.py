"""RichModelSummary: the model summary drawn as a ``rich`` table, as Lightning 2.6's.

``rich`` is optional: ``pip install lightcycle[rich]``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from lightcycle.callbacks.model_summary import ModelSummary
from lightcycle.core.model_summary import get_human_readable_count


def require_rich(name: str) -> None:
    """Raise the error for a rich-based callback when ``rich`` is not installed.

    Args:
        name: the callback's class name, for the message.

    Raises:
        ModuleNotFoundError: ``rich`` cannot be imported.
    """
    if importlib.util.find_spec("rich") is None:
        raise ModuleNotFoundError(
            f"`{name}` requires `rich` to be installed. Install it with `pip install lightcycle[rich]` "
            "(or `pip install -U rich`)."
        )


class RichModelSummary(ModelSummary):
    """:class:`ModelSummary` printed with ``rich`` (a styled table, then the totals as a grid).

    Args:
        max_depth: deepest layer nesting listed; 0 turns the summary off. Default 1.
        **summarize_kwargs: ``header_style`` (default ``"bold magenta"``).

    Raises:
        ModuleNotFoundError: ``rich`` is not installed (``pip install lightcycle[rich]``).
    """

    def __init__(self, max_depth: int = 1, **summarize_kwargs: Any) -> None:
        require_rich(type(self).__name__)
        super().__init__(max_depth, **summarize_kwargs)

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
        # deferred: heavy optional dependency rich
        from rich import get_console
        from rich.table import Table

        console = get_console()
        column_names = next(iter(zip(*summary_data, strict=False)))
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        table.add_column(" ", style="dim")
        table.add_column("Name", justify="left", no_wrap=True)
        table.add_column("Type")
        table.add_column("Params", justify="right")
        if "Params per Device" in column_names:
            table.add_column("Params per Device", justify="right")
        table.add_column("Mode")
        table.add_column("FLOPs", justify="right")
        for column_name in ("In sizes", "Out sizes"):
            if column_name in column_names:
                table.add_column(column_name, justify="right", style="white")
        for row in zip(*(arr[1] for arr in summary_data), strict=False):
            table.add_row(*row)
        console.print(table)
        counts = [trainable_parameters, total_parameters - trainable_parameters, total_parameters]
        parameters = [f"{get_human_readable_count(int(n)):<10}" for n in counts]
        parameters.append(f"{model_size:,.3f}".ljust(10))
        grid = Table.grid(expand=True)
        grid.add_column()
        grid.add_column()
        grid.add_row(f"[bold]Trainable params[/]: {parameters[0]}")
        grid.add_row(f"[bold]Non-trainable params[/]: {parameters[1]}")
        grid.add_row(f"[bold]Total params[/]: {parameters[2]}")
        grid.add_row(f"[bold]Total estimated model params size (MB)[/]: {parameters[3]}")
        grid.add_row(f"[bold]Modules in train mode[/]: {total_training_modes['train']}")
        grid.add_row(f"[bold]Modules in eval mode[/]: {total_training_modes['eval']}")
        grid.add_row(f"[bold]Total FLOPs[/]: {get_human_readable_count(total_flops)}")
        console.print(grid)
