"""``grad_norm`` (``lightning.pytorch.utilities.grads``)."""

from __future__ import annotations

import torch
from torch.nn import Module


def grad_norm(module: Module, norm_type: float | int | str, group_separator: str = "/") -> dict[str, torch.Tensor]:
    """The p-norm of each parameter's gradient and of all of them together, as Lightning names them.

    Args:
        module: the module whose ``.grad`` tensors are measured (parameters without one are skipped).
        norm_type: p, cast to float (``'inf'`` for the max norm).
        group_separator: between ``grad_{p}_norm`` and the parameter name (loggers group on it).

    Returns:
        ``{"grad_2.0_norm/layer.weight": tensor, ..., "grad_2.0_norm_total": tensor}``; empty
        when no parameter has a gradient.

    Raises:
        ValueError: ``norm_type`` is not positive.
    """
    p = float(norm_type)
    if p <= 0:
        raise ValueError(f"`norm_type` must be a positive number or 'inf' (infinity norm). Got {p}")
    norms = {
        f"grad_{p}_norm{group_separator}{name}": param.grad.data.norm(p)
        for name, param in module.named_parameters()
        if param.grad is not None
    }
    if norms:
        norms[f"grad_{p}_norm_total"] = torch.tensor(list(norms.values())).norm(p)
    return norms
