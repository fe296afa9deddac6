"""ModelSummary: a table of the module's top-level layers and parameter counts at fit start."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightcycle.callbacks.callback import Callback

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule
    from lightcycle.orchestrator.trainer import Trainer


def summarize(module: LightningModule, max_depth: int = 1) -> str:
    """The summary table as text.

    Args:
        module: the module to describe.
        max_depth: 1 lists direct children only.

    Returns:
        Rows of name, type and parameter count, then totals.
    """
    rows = [("", "Name", "Type", "Params")]
    for i, (name, child) in enumerate(module.named_children()):
        count = sum(p.numel() for p in child.parameters())
        rows.append((str(i), name, type(child).__name__, _human(count)))
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    rule = "-" * len(lines[0])
    lines.insert(1, rule)
    lines.append(rule)
    lines.append(f"{_human(trainable)}  Trainable params")
    lines.append(f"{_human(total - trainable)}  Non-trainable params")
    lines.append(f"{_human(total)}  Total params")
    return "\n".join(lines)


def _human(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(n)


class ModelSummary(Callback):
    """Prints :func:`summarize` once when fit starts (on by default, as in Lightning).

    Args:
        max_depth: how deep to list submodules (1: direct children).
    """

    def __init__(self, max_depth: int = 1) -> None:
        self.max_depth = max_depth

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        print(summarize(pl_module, self.max_depth))
