"""lightcycle.utilities against Lightning's own functions, called on the same inputs."""

from __future__ import annotations

import random
import warnings
from functools import partial, update_wrapper
from typing import Any
from unittest import mock

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import grad_norm as pl_grad_norm
from pytorch_lightning.utilities.model_helpers import is_overridden as pl_is_overridden
from pytorch_lightning.utilities.seed import isolate_rng as pl_isolate_rng

import lightcycle as L
from lightcycle.utilities import grad_norm, rank_zero_only, rank_zero_warn
from lightcycle.utilities.model_helpers import is_overridden
from lightcycle.utilities.seed import isolate_rng


@pytest.mark.parametrize("norm_type", [1, 2.0, "inf"])
def test_grad_norm_equals_lightnings(norm_type: Any) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1, bias=False))
    net(torch.randn(5, 3)).sum().backward()
    net[0].bias.grad = None  # a parameter without a gradient is skipped
    ours, theirs = grad_norm(net, norm_type), pl_grad_norm(net, norm_type)
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    with pytest.raises(ValueError, match="positive number"):
        grad_norm(net, 0)


def test_grad_norm_without_gradients_is_empty() -> None:
    assert grad_norm(torch.nn.Linear(2, 2), 2) == pl_grad_norm(torch.nn.Linear(2, 2), 2) == {}


def test_isolate_rng_puts_the_state_back_as_lightnings() -> None:
    def draws(ctx: Any) -> tuple[float, float, float]:
        torch.manual_seed(3)
        random.seed(3)
        with ctx():
            torch.rand(4)
            random.random()
        return float(torch.rand(1)), random.random(), float(torch.rand(1))

    assert draws(isolate_rng) == draws(pl_isolate_rng)


def test_rank_zero_only_runs_on_rank_zero_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    wrapped = rank_zero_only(lambda: calls.append(1) or "ran", default="skipped")
    assert wrapped() == "ran"
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    assert wrapped() == "skipped" and calls == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rank_zero_warn("not shown on rank 1")  # would raise if it warned


class _Module(L.LightningModule):
    def training_step(self, batch: Any, batch_idx: int) -> Any:
        return None


class _PlModule(pl.LightningModule):
    def training_step(self, batch: Any, batch_idx: int) -> Any:
        return None


def _wrap(obj: Any, name: str) -> None:
    attr = getattr(obj, name)
    wrapper = partial(lambda fn, *a, **k: fn(*a, **k), attr)
    update_wrapper(wrapper, attr)
    setattr(obj, name, wrapper)


@pytest.mark.parametrize("hook", ["training_step", "on_fit_start", "configure_model"])
@pytest.mark.parametrize("how", ["plain", "partial", "mock", "none"])
def test_is_overridden_answers_as_lightnings(hook: str, how: str) -> None:
    answers = []
    for module, ours in ((_Module(), True), (_PlModule(), False)):
        if how == "partial":
            _wrap(module, hook)
        elif how == "mock":
            object.__setattr__(module, hook, mock.Mock(wraps=getattr(module, hook)))
        elif how == "none":
            object.__setattr__(module, hook, None)
        answers.append((is_overridden if ours else pl_is_overridden)(hook, module))
    assert answers[0] == answers[1]
    assert is_overridden(hook, None) is False
