"""Tests for lightcycle.core.optim: LightningOptimizer and configure_optimizers parsing.

Valid forms are compared field by field with pytorch_lightning's own parser; invalid forms
must raise where Lightning raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from lightning_fabric.utilities.exceptions import (
    MisconfigurationException as PLMisconfigurationException,
)
from pytorch_lightning.core import optimizer as pl_optimizer
from torch import nn
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau, StepLR

from lightcycle.core.module import LightningModule
from lightcycle.core.optim import (
    LightningOptimizer,
    LRSchedulerConfig,
    MockOptimizer,
    parse_optimizers,
    resolve_optimizers,
    validate_optimizers,
)
from lightcycle.errors import MisconfigurationException

# --------------------------------------------------------------------------- helpers


def _params(n: int = 2) -> list[nn.Parameter]:
    return [nn.Parameter(torch.randn(3)) for _ in range(n)]


def _sgd() -> torch.optim.SGD:
    return torch.optim.SGD(_params(), lr=0.1)


def _pl_parse(returned: Any, automatic: bool = True) -> tuple[list[Any], list[Any]]:
    optimizers, schedulers, monitor = pl_optimizer._configure_optimizers(returned)
    if automatic:
        configs = pl_optimizer._configure_schedulers_automatic_opt(schedulers, monitor)
    else:
        configs = pl_optimizer._configure_schedulers_manual_opt(schedulers)
    pl_optimizer._validate_optimizers_attached(optimizers, configs)
    return optimizers, configs


def _config_tuple(config: Any, objects: dict[int, str]) -> tuple[Any, ...]:
    return (
        objects[id(config.scheduler)],
        config.name,
        config.interval,
        config.frequency,
        config.reduce_on_plateau,
        config.monitor,
        config.strict,
    )


def _form_single() -> tuple[Any, dict[int, str]]:
    opt = _sgd()
    return opt, {id(opt): "opt"}


def _form_list() -> tuple[Any, dict[int, str]]:
    a, b = _sgd(), _sgd()
    return [a, b], {id(a): "a", id(b): "b"}


def _form_tuple() -> tuple[Any, dict[int, str]]:
    a, b = _sgd(), _sgd()
    return (a, b), {id(a): "a", id(b): "b"}


def _form_two_lists() -> tuple[Any, dict[int, str]]:
    opt = _sgd()
    sched = StepLR(opt, 1)
    return ([opt], [sched]), {id(opt): "opt", id(sched): "sched"}


def _form_list_and_single_scheduler() -> tuple[Any, dict[int, str]]:
    opt = _sgd()
    sched = StepLR(opt, 1)
    return ([opt], sched), {id(opt): "opt", id(sched): "sched"}


def _form_two_lists_with_config_dict() -> tuple[Any, dict[int, str]]:
    opt = _sgd()
    sched = StepLR(opt, 1)
    return ([opt], [{"scheduler": sched, "interval": "step", "frequency": 3}]), {id(opt): "opt", id(sched): "sched"}


def _form_dict_optimizer_only() -> tuple[Any, dict[int, str]]:
    opt = _sgd()
    return {"optimizer": opt}, {id(opt): "opt"}


def _form_dict_with_scheduler() -> tuple[Any, dict[int, str]]:
    opt = _sgd()
    sched = StepLR(opt, 1)
    return {"optimizer": opt, "lr_scheduler": sched}, {id(opt): "opt", id(sched): "sched"}


def _form_dict_with_config() -> tuple[Any, dict[int, str]]:
    opt = _sgd()
    sched = StepLR(opt, 1)
    conf = {"scheduler": sched, "interval": "step", "frequency": 2, "name": "my_lr", "monitor": "m", "strict": False}
    return {"optimizer": opt, "lr_scheduler": conf}, {id(opt): "opt", id(sched): "sched"}


def _form_dict_plateau_outer_monitor() -> tuple[Any, dict[int, str]]:
    opt = _sgd()
    sched = ReduceLROnPlateau(opt)
    return {"optimizer": opt, "lr_scheduler": sched, "monitor": "val_loss"}, {id(opt): "opt", id(sched): "sched"}


def _form_dict_plateau_config_monitor() -> tuple[Any, dict[int, str]]:
    opt = _sgd()
    sched = ReduceLROnPlateau(opt)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}, {
        id(opt): "opt",
        id(sched): "sched",
    }


def _form_list_of_dicts() -> tuple[Any, dict[int, str]]:
    a, b = _sgd(), _sgd()
    sa = StepLR(a, 1)
    sb = ReduceLROnPlateau(b)
    returned = [
        {"optimizer": a, "lr_scheduler": sa},
        {"optimizer": b, "lr_scheduler": {"scheduler": sb, "monitor": "loss", "interval": "step"}},
    ]
    return returned, {id(a): "a", id(b): "b", id(sa): "sa", id(sb): "sb"}


def _form_list_of_dicts_partial() -> tuple[Any, dict[int, str]]:
    a, b = _sgd(), _sgd()
    sb = StepLR(b, 1)
    return [{"optimizer": a}, {"optimizer": b, "lr_scheduler": sb}], {id(a): "a", id(b): "b", id(sb): "sb"}


def _form_empty_list() -> tuple[Any, dict[int, str]]:
    return [], {}


VALID_FORMS: list[Callable[[], tuple[Any, dict[int, str]]]] = [
    _form_single,
    _form_list,
    _form_tuple,
    _form_two_lists,
    _form_list_and_single_scheduler,
    _form_two_lists_with_config_dict,
    _form_dict_optimizer_only,
    _form_dict_with_scheduler,
    _form_dict_with_config,
    _form_dict_plateau_outer_monitor,
    _form_dict_plateau_config_monitor,
    _form_list_of_dicts,
    _form_list_of_dicts_partial,
    _form_empty_list,
]


# --------------------------------------------------------------------------- parsing: valid forms


@pytest.mark.parametrize("form", VALID_FORMS, ids=lambda f: f.__name__)
def test_parse_matches_lightning(form: Callable[[], tuple[Any, dict[int, str]]]) -> None:
    returned, names = form()
    optimizers, configs = parse_optimizers(returned)
    pl_optimizers, pl_configs = _pl_parse(returned)

    assert [names[id(o)] for o in optimizers] == [names[id(o)] for o in pl_optimizers]
    assert all(isinstance(c, LRSchedulerConfig) for c in configs)
    assert [_config_tuple(c, names) for c in configs] == [_config_tuple(c, names) for c in pl_configs]


def test_parse_single_optimizer_defaults() -> None:
    opt = _sgd()
    sched = StepLR(opt, 1)
    optimizers, configs = parse_optimizers({"optimizer": opt, "lr_scheduler": sched})
    assert optimizers == [opt]
    assert configs == [LRSchedulerConfig(sched)]
    config = configs[0]
    assert (config.interval, config.frequency, config.reduce_on_plateau, config.monitor, config.strict) == (
        "epoch",
        1,
        False,
        None,
        True,
    )


def test_parse_none_warns_and_uses_mock_optimizer() -> None:
    with pytest.warns(UserWarning, match="returned `None`, this fit will run with no optimizer"):
        optimizers, configs = parse_optimizers(None)
    assert len(optimizers) == 1
    assert isinstance(optimizers[0], MockOptimizer)
    assert configs == []
    assert repr(optimizers[0]) == "No Optimizer"
    calls: list[int] = []

    def closure() -> float:
        calls.append(1)
        return 5.0

    assert optimizers[0].step(closure) == 5.0
    assert calls == [1]
    assert optimizers[0].state_dict() == {}


def test_parse_unwraps_lightning_optimizer() -> None:
    opt = _sgd()
    optimizers, _ = parse_optimizers(LightningOptimizer(opt))
    assert optimizers[0] is opt


def test_manual_optimization_ignores_monitor_keys_with_warning() -> None:
    opt = _sgd()
    sched = ReduceLROnPlateau(opt)
    returned = {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "loss", "interval": "step"}}
    with pytest.warns(RuntimeWarning, match="will be ignored"):
        _, configs = parse_optimizers(returned, automatic_optimization=False)
    with pytest.warns(RuntimeWarning):
        _, pl_configs = _pl_parse(returned, automatic=False)
    names = {id(sched): "sched"}
    assert [_config_tuple(c, names) for c in configs] == [_config_tuple(c, names) for c in pl_configs]
    assert configs[0].monitor is None
    assert configs[0].interval == "step"


def test_extra_scheduler_keys_warn_and_are_dropped() -> None:
    opt = _sgd()
    sched = StepLR(opt, 1)
    with pytest.warns(RuntimeWarning, match="unsupported keys in the lr scheduler dict"):
        _, configs = parse_optimizers({"optimizer": opt, "lr_scheduler": {"scheduler": sched, "bogus": 1}})
    assert configs[0].scheduler is sched


def test_extra_optimizer_keys_warn() -> None:
    with pytest.warns(RuntimeWarning, match="unsupported keys in the optimizer configuration"):
        parse_optimizers({"optimizer": _sgd(), "frequency": 2})


def test_one_cycle_with_epoch_interval_warns() -> None:
    opt = _sgd()
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=10)
    with pytest.warns(RuntimeWarning, match="OneCycleLR"):
        parse_optimizers({"optimizer": opt, "lr_scheduler": {"scheduler": sched}})


# --------------------------------------------------------------------------- parsing: invalid forms


def _bad_unknown() -> Any:
    return "adam"


def _bad_list_of_junk() -> Any:
    return [_sgd(), 3]


def _bad_plateau_without_monitor() -> Any:
    opt = _sgd()
    return {"optimizer": opt, "lr_scheduler": ReduceLROnPlateau(opt)}


def _bad_plateau_in_lists() -> Any:
    opt = _sgd()
    return [opt], [ReduceLROnPlateau(opt)]


def _bad_plateau_config_without_monitor() -> Any:
    opt = _sgd()
    return {"optimizer": opt, "lr_scheduler": {"scheduler": ReduceLROnPlateau(opt)}, "monitor": "x"}


def _bad_plateau_in_list_of_dicts() -> Any:
    opt = _sgd()
    return [{"optimizer": opt, "lr_scheduler": ReduceLROnPlateau(opt), "monitor": "x"}]


def _bad_interval() -> Any:
    opt = _sgd()
    return {"optimizer": opt, "lr_scheduler": {"scheduler": StepLR(opt, 1), "interval": "batch"}}


def _bad_scheduler_dict_without_scheduler() -> Any:
    return {"optimizer": _sgd(), "lr_scheduler": {"interval": "step"}}


def _bad_foreign_optimizer() -> Any:
    return {"optimizer": _sgd(), "lr_scheduler": StepLR(_sgd(), 1)}


@pytest.mark.parametrize(
    ("form", "match"),
    [
        (_bad_unknown, "Unknown configuration for model optimizers"),
        (_bad_list_of_junk, "Unknown configuration for model optimizers"),
        (_bad_plateau_without_monitor, "must include a monitor when a `ReduceLROnPlateau`"),
        (_bad_plateau_in_lists, "must include a monitor when a `ReduceLROnPlateau`"),
        (_bad_plateau_config_without_monitor, "must include a monitor when a `ReduceLROnPlateau`"),
        (_bad_plateau_in_list_of_dicts, "must include a monitor when a `ReduceLROnPlateau`"),
        (_bad_interval, 'must be "step" or "epoch" but is "batch"'),
        (_bad_scheduler_dict_without_scheduler, 'must have the key "scheduler"'),
        (_bad_foreign_optimizer, "wasn't returned from `configure_optimizers`"),
    ],
    ids=lambda v: getattr(v, "__name__", "msg"),
)
def test_invalid_forms_raise_like_lightning(form: Callable[[], Any], match: str) -> None:
    with pytest.raises(MisconfigurationException, match=match):
        parse_optimizers(form())
    with pytest.raises(PLMisconfigurationException, match=match):
        _pl_parse(form())


def test_plateau_message_names_the_fix() -> None:
    opt = _sgd()
    with pytest.raises(MisconfigurationException, match=r'"monitor": "metric_to_track"'):
        parse_optimizers({"optimizer": opt, "lr_scheduler": ReduceLROnPlateau(opt)})


# --------------------------------------------------------------------------- validation against the module


class _Model(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        return self.layer(batch).sum()


class _CustomScheduler:
    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def step(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def test_multiple_optimizers_need_manual_optimization() -> None:
    model = _Model()
    a, b = torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="only supported with manual optimization"):
        resolve_optimizers(model, [a, b])
    model.automatic_optimization = False
    optimizers, _ = resolve_optimizers(model, [a, b])
    assert optimizers == [a, b]


def test_optimizer_idx_in_training_step_is_rejected() -> None:
    class Old(_Model):
        def training_step(self, batch: Any, batch_idx: int, optimizer_idx: int = 0) -> Any:
            return None

    model = Old()
    with pytest.raises(RuntimeError, match="Remove the `optimizer_idx`"):
        resolve_optimizers(model, torch.optim.SGD(model.parameters(), lr=0.1))


def test_custom_scheduler_requires_lr_scheduler_step_override() -> None:
    model = _Model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(MisconfigurationException, match="doesn't follow PyTorch's LRScheduler API"):
        resolve_optimizers(model, {"optimizer": opt, "lr_scheduler": _CustomScheduler(opt)})

    class WithStep(_Model):
        def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
            scheduler.step()

    model2 = WithStep()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1)
    _, configs = resolve_optimizers(model2, {"optimizer": opt2, "lr_scheduler": _CustomScheduler(opt2)})
    assert isinstance(configs[0].scheduler, _CustomScheduler)


def test_scheduler_without_state_dict_is_a_type_error() -> None:
    model = _Model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    class NoState:
        optimizer = opt

        def step(self) -> None:
            pass

    configs = [LRSchedulerConfig(NoState())]
    with pytest.raises(TypeError, match="should have `state_dict` and `load_state_dict`"):
        validate_optimizers(model, [opt], configs)


# --------------------------------------------------------------------------- LightningOptimizer


class _RecordingSGD(torch.optim.SGD):
    def __init__(self, params: Any, events: list[str]) -> None:
        super().__init__(params, lr=0.1)
        self.events = events

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.events.append("update")
        super().step()
        return loss


def _wrapped(events: list[str]) -> tuple[LightningOptimizer, nn.Parameter]:
    param = nn.Parameter(torch.tensor([1.0, -2.0]))
    lopt = LightningOptimizer(_RecordingSGD([param], events))
    lopt._on_before_step = lambda: events.append("before")
    lopt._on_after_step = lambda: events.append("after")
    return lopt, param


def test_lightning_optimizer_passthrough() -> None:
    opt = _sgd()
    lopt = LightningOptimizer(opt)
    assert isinstance(lopt, torch.optim.SGD)
    assert isinstance(lopt, torch.optim.Optimizer)
    assert isinstance(lopt, LightningOptimizer)
    assert lopt.optimizer is opt
    assert lopt.param_groups is opt.param_groups
    assert lopt.state is opt.state
    assert lopt.defaults is opt.defaults
    assert lopt.state_dict() == opt.state_dict()
    lopt.param_groups[0]["lr"] = 0.5
    assert opt.param_groups[0]["lr"] == 0.5
    for p in opt.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    lopt.zero_grad()
    assert all(p.grad is None for p in opt.param_groups[0]["params"])
    new_param = nn.Parameter(torch.zeros(1))
    lopt.add_param_group({"params": [new_param]})
    assert opt.param_groups[-1]["params"] == [new_param]
    opt.custom_attr = 5  # type: ignore[attr-defined]
    assert lopt.custom_attr == 5


def test_step_without_closure_order() -> None:
    events: list[str] = []
    lopt, param = _wrapped(events)
    param.grad = torch.ones_like(param)
    out = lopt.step()
    assert events == ["before", "update", "after"]
    assert out is None
    assert torch.allclose(param.detach(), torch.tensor([0.9, -2.1]))


def test_step_with_closure_order_and_return() -> None:
    events: list[str] = []
    lopt, param = _wrapped(events)

    def closure() -> torch.Tensor:
        events.append("closure")
        lopt.zero_grad()
        loss = (param**2).sum()
        torch.autograd.backward(loss)
        return loss

    out = lopt.step(closure=closure)
    assert events == ["closure", "before", "update", "after"]
    assert isinstance(out, torch.Tensor)
    assert out.item() == pytest.approx(5.0)


def test_non_callable_closure_is_rejected() -> None:
    lopt = LightningOptimizer(_sgd())
    with pytest.raises(MisconfigurationException, match="closure should be callable"):
        lopt.step(closure=3)  # type: ignore[arg-type]


def test_step_kwargs_are_forwarded() -> None:
    seen: dict[str, Any] = {}

    class KwargOpt(torch.optim.SGD):
        def step(self, closure: Any = None, scale: float = 1.0) -> Any:
            seen["scale"] = scale
            return None

    LightningOptimizer(KwargOpt(_params(), lr=0.1)).step(scale=2.0)
    assert seen == {"scale": 2.0}


def test_lbfgs_closure_hook_fires_after_every_evaluation_and_matches_plain_lbfgs() -> None:
    target = torch.tensor([3.0, -1.0])

    def run(wrap: bool) -> tuple[torch.Tensor, list[str]]:
        events: list[str] = []
        param = nn.Parameter(torch.zeros(2))
        opt = torch.optim.LBFGS([param], lr=1.0, max_iter=5)
        stepper: Any = opt
        if wrap:
            lopt = LightningOptimizer(opt)
            lopt._on_before_step = lambda: events.append("before")
            lopt._on_after_step = lambda: events.append("after")
            stepper = lopt

        def closure() -> torch.Tensor:
            events.append("closure")
            opt.zero_grad()
            loss = ((param - target) ** 2).sum()
            torch.autograd.backward(loss)
            return loss

        for _ in range(2):
            stepper.step(closure)
        return param.detach().clone(), events

    plain, plain_events = run(wrap=False)
    wrapped, events = run(wrap=True)
    assert torch.equal(plain, wrapped)
    n_closures = plain_events.count("closure")
    assert n_closures > 2  # LBFGS evaluates the closure several times per step
    # the hook runs right after every closure evaluation, "after" once per step
    expected = []
    for event in plain_events:
        expected += [event, "before"]
    assert [e for e in events if e != "after"] == expected
    assert events.count("after") == 2
    assert events[-1] == "after"
    assert torch.allclose(wrapped, target, atol=1e-4)


def test_toggle_model_requires_module_and_toggles() -> None:
    lopt = LightningOptimizer(_sgd())
    with pytest.raises(RuntimeError, match="not attached to a LightningModule"), lopt.toggle_model():
        pass


def test_lightning_optimizer_repr_and_wrap_idempotent() -> None:
    opt = _sgd()
    lopt = LightningOptimizer._to_lightning_optimizer(opt)
    assert LightningOptimizer._to_lightning_optimizer(lopt) is lopt
    assert "SGD" in repr(lopt)
    assert type(lopt).__name__ == "LightningSGD"


def test_a_lightning_optimizer_deep_copies_with_its_wrapper_state() -> None:
    """The imitated optimizer class would copy only defaults/state/param_groups, leaving a copy
    without ``_optimizer`` on which every attribute lookup raised (found by a RichProgressBar test
    that deep-copies a trainer); the copy is a whole wrapper around a copied optimizer."""
    import copy

    from lightcycle.core.optim import LightningOptimizer

    params = [torch.nn.Parameter(torch.ones(2))]
    wrapped = LightningOptimizer(torch.optim.SGD(params, lr=0.5))
    twin = copy.deepcopy(wrapped)
    assert isinstance(twin, torch.optim.SGD)
    assert twin.optimizer is not wrapped.optimizer
    assert twin.param_groups[0]["lr"] == 0.5
    assert twin.optimizer.param_groups[0]["params"][0] is not params[0]
