"""Tests for the hook permission table (core.fx_validator) and MetricStore (core.metric_store).

The central test runs one small scenario through real ``pytorch_lightning`` and through a
``MetricStore`` driven in the order the lightcycle Trainer uses, and requires the same
``callback_metrics`` / ``logged_metrics`` / ``progress_bar_metrics`` at every hook.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from lightcycle.core.batch_size import extract_batch_size
from lightcycle.core.fx_validator import LOGGING_HOOKS, check_logging_allowed
from lightcycle.core.metric_store import MetricStore
from lightcycle.errors import MisconfigurationException
from tests import kit

# --------------------------------------------------------------------------------------
# The scenario: what is logged, from which hook, with which arguments
# --------------------------------------------------------------------------------------

LogCall = tuple[str, Any, dict[str, Any]]


def module_logs(hook: str, epoch: int, batch_idx: int = 0, dl: int | None = None) -> list[LogCall]:
    """What the LightningModule logs in ``hook``."""
    d = 0 if dl is None else dl
    if hook == "on_train_start":
        return [("fit_start", 7.0, {})]
    if hook == "on_train_epoch_start":
        return [("ep_start", 10.0 + epoch, {})]
    if hook == "training_step":
        return [
            (
                "t_step",
                torch.tensor(epoch * 10 + batch_idx + 0.5),
                {"on_step": True, "on_epoch": False, "prog_bar": True},
            ),
            ("t_both", torch.tensor([epoch + batch_idx * 2.0]), {"on_step": True, "on_epoch": True, "prog_bar": True}),
            ("t_sum", batch_idx + 1.0, {"on_step": False, "on_epoch": True, "reduce_fx": "sum"}),
            (
                "t_max",
                torch.tensor((3.0 - batch_idx) * (epoch + 1)),
                {"on_epoch": True, "reduce_fx": torch.max, "logger": False},
            ),
            ("t_bs", float(batch_idx), {"on_step": False, "on_epoch": True, "batch_size": batch_idx + 1}),
            ("t_int", torch.tensor(batch_idx), {}),
        ]
    if hook == "on_train_epoch_end":
        return [("ep_end", 100.0 + epoch, {"prog_bar": True})]
    if hook == "on_validation_start":
        return [("v_start", 5.0 + epoch, {})]
    if hook == "validation_step":
        val = d * 10.0 + batch_idx + epoch * 0.25
        return [
            ("v_loss", torch.tensor(val), {"prog_bar": True}),
            ("v_step", val + 1.0, {"on_step": True, "on_epoch": False}),
            (
                "v_both",
                torch.tensor(val + 2.0),
                {"on_step": True, "on_epoch": True, "reduce_fx": "min", "prog_bar": True},
            ),
            (f"v_noidx{d}", val + 3.0, {"add_dataloader_idx": False}),
        ]
    if hook == "on_validation_epoch_end":
        return [("v_ep_end", 50.0 + epoch, {"prog_bar": True})]
    if hook == "test_step":
        return [
            ("test_loss", batch_idx + 0.5, {"prog_bar": True}),
            ("test_both", torch.tensor(batch_idx * 2.0), {"on_step": True, "on_epoch": True}),
        ]
    if hook == "on_test_epoch_end":
        return [("test_end", 1.0, {})]
    return []


def callback_logs(hook: str, epoch: int, batch_idx: int = 0, dl: int | None = None) -> list[LogCall]:
    """What a callback logs (through ``pl_module.log``) in ``hook``."""
    d = 0 if dl is None else dl
    if hook == "on_train_batch_end":
        return [("cb_batch", batch_idx * 3.0, {"prog_bar": True})]
    if hook == "on_validation_batch_end":
        return [("cb_vb", float(batch_idx + d), {})]
    if hook == "on_validation_epoch_end":
        return [("cb_vep", 3.0 + epoch, {})]
    return []


TRAIN_SIZES = [4, 4, 2]  # 10 samples, batch size 4
VAL_SIZES = [[4, 2], [2, 1]]  # dataloader 0: 6 samples / 4, dataloader 1: 3 samples / 2
TEST_SIZES = [2, 2, 1]  # 5 samples / 2
MAX_EPOCHS = 2

Snapshot = tuple[str, tuple[Any, ...], dict[str, float], dict[str, float], dict[str, float]]


def snapshot(
    label: str, ctx: tuple[Any, ...], cb: dict[str, Any], log: dict[str, Any], pbar: dict[str, Any]
) -> Snapshot:
    return (
        label,
        ctx,
        {k: float(v) for k, v in cb.items()},
        {k: float(v) for k, v in log.items()},
        {k: float(v) for k, v in pbar.items()},
    )


# --------------------------------------------------------------------------------------
# Running the scenario through real Lightning
# --------------------------------------------------------------------------------------


def run_lightning(tmp_path: Any) -> tuple[list[Snapshot], list[dict[str, float]], list[dict[str, float]]]:
    pl = pytest.importorskip("pytorch_lightning")
    from pytorch_lightning.callbacks import Checkpoint
    from torch.utils.data import DataLoader, TensorDataset

    records: list[Snapshot] = []

    def ctx_of(trainer: Any, hook: str, batch_idx: int = -1, dl: int = -1) -> tuple[Any, ...]:
        return (hook, trainer.sanity_checking, trainer.current_epoch, batch_idx, dl)

    def record(trainer: Any, label: str, batch_idx: int = -1, dl: int = -1) -> None:
        records.append(
            snapshot(
                label,
                ctx_of(trainer, label, batch_idx, dl),
                trainer.callback_metrics,
                trainer.logged_metrics,
                trainer.progress_bar_metrics,
            )
        )

    def apply(module: Any, calls: list[LogCall]) -> None:
        for name, value, kw in calls:
            module.log(name, value, **kw)

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def _e(self) -> int:
            return int(self.trainer.current_epoch)

        def on_train_start(self) -> None:
            apply(self, module_logs("on_train_start", self._e()))

        def on_train_epoch_start(self) -> None:
            apply(self, module_logs("on_train_epoch_start", self._e()))

        def training_step(self, batch: Any, batch_idx: int) -> Tensor:
            apply(self, module_logs("training_step", self._e(), batch_idx))
            return self.layer(batch[0]).sum()

        def on_train_epoch_end(self) -> None:
            apply(self, module_logs("on_train_epoch_end", self._e()))

        def on_validation_start(self) -> None:
            apply(self, module_logs("on_validation_start", self._e()))

        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            apply(self, module_logs("validation_step", self._e(), batch_idx, dataloader_idx))

        def on_validation_epoch_end(self) -> None:
            apply(self, module_logs("on_validation_epoch_end", self._e()))

        def test_step(self, batch: Any, batch_idx: int) -> None:
            apply(self, module_logs("test_step", self._e(), batch_idx))

        def on_test_epoch_end(self) -> None:
            apply(self, module_logs("on_test_epoch_end", self._e()))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.0)

    class LoggingCallback(pl.Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            apply(pl_module, callback_logs("on_train_batch_end", trainer.current_epoch, batch_idx))

        def on_validation_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
        ) -> None:
            apply(pl_module, callback_logs("on_validation_batch_end", trainer.current_epoch, batch_idx, dataloader_idx))

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            apply(pl_module, callback_logs("on_validation_epoch_end", trainer.current_epoch))

    plain = [
        "on_sanity_check_end",
        "on_train_start",
        "on_train_epoch_start",
        "on_validation_start",
        "on_validation_epoch_start",
        "on_validation_epoch_end",
        "on_validation_end",
        "on_train_epoch_end",
        "on_train_end",
        "on_test_start",
        "on_test_epoch_start",
        "on_test_epoch_end",
        "on_test_end",
    ]

    def plain_recorder(name: str) -> Callable[..., None]:
        def fn(self: Any, trainer: Any, pl_module: Any) -> None:
            record(trainer, name)

        return fn

    ns: dict[str, Any] = {h: plain_recorder(h) for h in plain}

    def on_train_batch_start(self: Any, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        record(trainer, "on_train_batch_start", batch_idx)

    def on_train_batch_end(self: Any, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        record(trainer, "on_train_batch_end", batch_idx)

    def eval_start(name: str) -> Callable[..., None]:
        def fn(self: Any, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            record(trainer, name, batch_idx, dataloader_idx)

        return fn

    def eval_end(name: str) -> Callable[..., None]:
        def fn(
            self: Any, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
        ) -> None:
            record(trainer, name, batch_idx, dataloader_idx)

        return fn

    ns.update(
        on_train_batch_start=on_train_batch_start,
        on_train_batch_end=on_train_batch_end,
        on_validation_batch_start=eval_start("on_validation_batch_start"),
        on_test_batch_start=eval_start("on_test_batch_start"),
        on_validation_batch_end=eval_end("on_validation_batch_end"),
        on_test_batch_end=eval_end("on_test_batch_end"),
    )
    Recorder = type("Recorder", (pl.Callback,), ns)

    class MonitorRecorder(Checkpoint):  # a "monitoring" callback: runs after the module's epoch end
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            record(trainer, "monitor.on_train_epoch_end")

    def loader(n: int, bs: int) -> Any:
        return DataLoader(TensorDataset(torch.randn(n, 2)), batch_size=bs)

    trainer = pl.Trainer(
        **kit.quiet(
            checkpointing=None,
            max_epochs=MAX_EPOCHS,
            accelerator="cpu",
            devices=1,
            num_sanity_val_steps=1,
            default_root_dir=tmp_path,
            callbacks=[LoggingCallback(), Recorder(), MonitorRecorder()],
        )
    )
    model = Model()
    val = [loader(6, 4), loader(3, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, train_dataloaders=loader(10, 4), val_dataloaders=val)
        record(trainer, "after_fit")
        val_results = trainer.validate(model, dataloaders=val, verbose=False)
        record(trainer, "after_validate")
        test_results = trainer.test(model, dataloaders=loader(5, 2), verbose=False)
        record(trainer, "after_test")
    return records, val_results, test_results


# --------------------------------------------------------------------------------------
# Replaying it on a MetricStore, in the lightcycle Trainer's order of calls
# --------------------------------------------------------------------------------------


class Replay:
    """Drives a MetricStore through the scenario the way the Trainer calls it."""

    def __init__(self) -> None:
        self.store = MetricStore()
        self.records: list[Snapshot] = []
        self.epoch = 0
        self.sanity = False
        self.lazy = False

    def record(self, label: str, batch_idx: int = -1, dl: int = -1) -> None:
        s = self.store
        self.records.append(
            snapshot(
                label,
                (label, self.sanity, self.epoch, batch_idx, dl),
                s.callback_metrics,
                s.logged_metrics,
                s.progress_bar_metrics,
            )
        )

    def log(self, hook: str, calls: list[LogCall], stage: str) -> None:
        for name, value, kw in calls:
            kw = dict(kw)
            on_step, on_epoch = check_logging_allowed(hook, kw.pop("on_step", None), kw.pop("on_epoch", None))
            self.store.log(hook, name, value, stage=stage, on_step=on_step, on_epoch=on_epoch, **kw)

    def hook(self, name: str, stage: str, batch_idx: int = -1, dl: int | None = None, recorded: bool = True) -> None:
        """Callbacks (logging one, then recorder) run before the module's hook."""
        b = max(batch_idx, 0)
        self.log(name, callback_logs(name, self.epoch, b, dl), stage)
        if recorded:
            self.record(name, batch_idx, -1 if batch_idx < 0 or stage == "train" else (dl or 0))
        self.log(name, module_logs(name, self.epoch, b, dl), stage)

    def evaluate(self, stage: str, prefix: str, sizes: list[list[int]]) -> dict[str, Tensor]:
        s = self.store
        s.start_epoch(stage)
        self.hook(f"on_{prefix}_start", stage)
        self.hook(f"on_{prefix}_epoch_start", stage)
        for dl_i, batch_sizes in enumerate(sizes):
            dl = dl_i if len(sizes) > 1 else None
            for b, bs in enumerate(batch_sizes):
                s.start_batch(stage, dl, [torch.zeros(bs, 2)])
                self.hook(f"on_{prefix}_batch_start", stage, b, dl)
                self.log(f"{prefix}_step", module_logs(f"{prefix}_step", self.epoch, b, dl), stage)
                self.hook(f"on_{prefix}_batch_end", stage, b, dl)
                s.end_batch(stage)
        s.end_epoch(stage)
        self.hook(f"on_{prefix}_epoch_end", stage)
        out = s.close_epoch(stage)
        self.record(f"on_{prefix}_end")
        return out

    def fit(self) -> None:
        s = self.store
        s.reset_run()
        self.sanity = True
        self.evaluate("sanity_check", "validation", [[1], [1]])
        self.record("on_sanity_check_end")
        s.discard_stage("sanity_check")
        self.sanity = False
        s.start_epoch("train")
        self.hook("on_train_start", "train")
        for epoch in range(MAX_EPOCHS):
            self.epoch = epoch
            s.start_epoch("train")
            self.hook("on_train_epoch_start", "train")
            for b, bs in enumerate(TRAIN_SIZES):
                s.start_batch("train", None, [torch.zeros(bs, 2)])
                self.hook("on_train_batch_start", "train", b)
                self.log("training_step", module_logs("training_step", epoch, b), "train")
                self.hook("on_train_batch_end", "train", b)
                if self.lazy:  # the Trainer's way: the view is built when read or when it changes shape
                    s.close_batch("train")
                else:
                    s.end_batch("train")
                if b == len(TRAIN_SIZES) - 1:
                    self.evaluate("validate", "validation", VAL_SIZES)
            s.end_epoch("train")
            self.hook("on_train_epoch_end", "train")
            self.record("monitor.on_train_epoch_end")
            s.close_epoch("train")
        self.epoch = MAX_EPOCHS  # Lightning's current_epoch after fit
        self.record("on_train_end")
        s.teardown()
        self.record("after_fit")


def run_replay(lazy: bool = False) -> tuple[list[Snapshot], list[dict[str, float]], list[dict[str, float]]]:
    r = Replay()
    r.lazy = lazy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r.fit()
        r.store.reset_run()
        r.evaluate("validate", "validation", VAL_SIZES)
        val_results = [{k: float(v) for k, v in d.items()} for d in r.store.eval_outputs]
        r.store.teardown()
        r.record("after_validate")
        r.store.reset_run()
        r.evaluate("test", "test", [TEST_SIZES])
        test_results = [{k: float(v) for k, v in d.items()} for d in r.store.eval_outputs]
        r.store.teardown()
        r.record("after_test")
    return r.records, val_results, test_results


def assert_same_metrics(ours: dict[str, float], theirs: dict[str, float], where: str) -> None:
    assert set(ours) == set(theirs), (
        f"{where}: only in lightcycle {sorted(set(ours) - set(theirs))},"
        f" only in Lightning {sorted(set(theirs) - set(ours))}"
    )
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=1e-6, abs=1e-6), f"{where}: {key}"


@pytest.fixture(scope="module")
def lightning_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_lightning(tmp_path_factory.mktemp("pl"))


@pytest.mark.parametrize("lazy", [False, True], ids=["end_batch", "close_batch"])
def test_matches_lightning_at_every_hook(lightning_run: Any, lazy: bool) -> None:
    theirs, _, _ = lightning_run
    ours, _, _ = run_replay(lazy)
    assert [r[1] for r in ours] == [r[1] for r in theirs]
    for mine, ref in zip(ours, theirs, strict=True):
        where = repr(ref[1])
        assert_same_metrics(mine[2], ref[2], f"{where} callback_metrics")
        assert_same_metrics(mine[3], ref[3], f"{where} logged_metrics")
        assert_same_metrics(mine[4], ref[4], f"{where} progress_bar_metrics")


def test_eval_outputs_match_lightning_results(lightning_run: Any) -> None:
    _, val_theirs, test_theirs = lightning_run
    _, val_ours, test_ours = run_replay()
    assert len(val_ours) == len(val_theirs) == 2
    for i, (mine, ref) in enumerate(zip(val_ours, val_theirs, strict=True)):
        assert_same_metrics(mine, ref, f"validate dataloader {i}")
    assert len(test_ours) == len(test_theirs) == 1
    assert_same_metrics(test_ours[0], test_theirs[0], "test")


# --------------------------------------------------------------------------------------
# check_logging_allowed
# --------------------------------------------------------------------------------------


def test_permission_table_matches_lightning() -> None:
    pytest.importorskip("pytorch_lightning")
    from pytorch_lightning.trainer.connectors.logger_connector.fx_validator import _FxValidator
    from pytorch_lightning.utilities.exceptions import MisconfigurationException as PLMisconf

    assert set(_FxValidator.functions) - {"on_exception"} <= set(LOGGING_HOOKS) | {
        k for k, v in _FxValidator.functions.items() if v is None
    }
    assert {k for k, v in _FxValidator.functions.items() if v is not None} == LOGGING_HOOKS
    choices = (None, False, True)
    for fx in _FxValidator.functions:
        for on_step in choices:
            for on_epoch in choices:
                try:
                    expected: Any = _FxValidator.check_logging_and_get_default_levels(fx, on_step, on_epoch)
                except PLMisconf:
                    expected = "raises"
                try:
                    got: Any = check_logging_allowed(fx, on_step, on_epoch)
                except MisconfigurationException:
                    got = "raises"
                assert got == expected, (fx, on_step, on_epoch)


@pytest.mark.parametrize(
    ("fx", "expected"),
    [
        ("training_step", (True, False)),
        ("on_train_batch_start", (True, False)),
        ("on_train_batch_end", (True, False)),
        ("on_before_backward", (True, False)),
        ("on_after_backward", (True, False)),
        ("on_before_optimizer_step", (True, False)),
        ("validation_step", (False, True)),
        ("test_step", (False, True)),
        ("on_validation_batch_end", (False, True)),
        ("on_train_start", (False, True)),
        ("on_train_epoch_end", (False, True)),
        ("on_validation_epoch_end", (False, True)),
        ("on_test_epoch_start", (False, True)),
    ],
)
def test_defaults_per_hook(fx: str, expected: tuple[bool, bool]) -> None:
    assert check_logging_allowed(fx, None, None) == expected
    # explicit values are kept where allowed
    assert check_logging_allowed(fx, None, True)[1] is True


@pytest.mark.parametrize(
    "fx",
    [
        "on_fit_start",
        "predict_step",
        "setup",
        "configure_optimizers",
        "on_validation_end",
        "on_sanity_check_start",
        "on_save_checkpoint",
    ],
)
def test_forbidden_hooks_name_the_hook(fx: str) -> None:
    with pytest.raises(MisconfigurationException, match=f"`{fx}`.*does not support logging"):
        check_logging_allowed(fx, None, None)


def test_forbidden_values_name_argument_and_allowed_values() -> None:
    with pytest.raises(MisconfigurationException, match=r"on_step=True\)` inside `on_train_epoch_end`.*\(False,\)"):
        check_logging_allowed("on_train_epoch_end", True, None)
    with pytest.raises(
        MisconfigurationException, match=r"on_epoch=False\)` inside `on_validation_epoch_end`.*\(True,\)"
    ):
        check_logging_allowed("on_validation_epoch_end", None, False)


def test_logging_outside_hooks() -> None:
    with pytest.raises(MisconfigurationException, match="only works inside hooks the Trainer calls"):
        check_logging_allowed(None, None, None)
    with pytest.raises(MisconfigurationException, match="`my_helper`"):
        check_logging_allowed("my_helper", True, True)


# --------------------------------------------------------------------------------------
# MetricStore unit tests
# --------------------------------------------------------------------------------------


def _train_epoch(store: MetricStore, values: list[float], sizes: list[int] | None = None, **kw: Any) -> None:
    store.start_epoch("train")
    for i, v in enumerate(values):
        store.start_batch("train", None, [torch.zeros((sizes or [1] * len(values))[i], 3)])
        store.log("training_step", "x", torch.tensor(v), stage="train", **kw)
        store.end_batch("train")
    store.end_epoch("train")


def test_step_and_epoch_keys_and_callback_name() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)
    store.log("training_step", "loss", torch.tensor(2.0), stage="train", on_step=True, on_epoch=True, prog_bar=True)
    # inside the batch: step value, and `loss` is the step value in callback_metrics (training)
    assert set(store.callback_metrics) == {"loss", "loss_step"}
    assert float(store.callback_metrics["loss"]) == 2.0
    assert set(store.logged_metrics) == {"loss_step"}
    assert store.progress_bar_metrics == {"loss_step": 2.0}
    store.end_batch("train")
    store.start_batch("train", None, None)
    store.log("training_step", "loss", torch.tensor(4.0), stage="train", on_step=True, on_epoch=True, prog_bar=True)
    store.end_batch("train")
    store.end_epoch("train")
    # epoch end: `loss` becomes the epoch mean, `loss_step` keeps the last step value
    assert float(store.callback_metrics["loss"]) == 3.0
    assert float(store.callback_metrics["loss_epoch"]) == 3.0
    assert float(store.callback_metrics["loss_step"]) == 4.0
    assert store.progress_bar_metrics == {"loss_step": 4.0, "loss_epoch": 3.0}
    out = store.close_epoch("train")
    assert set(out) == {"loss_epoch"} and float(out["loss_epoch"]) == 3.0
    assert float(store.callback_metrics["loss"]) == 3.0  # kept after the epoch


def test_weighted_mean_and_reductions() -> None:
    store = MetricStore()
    store.reset_run()
    _train_epoch(store, [1.0, 2.0, 4.0], sizes=[4, 4, 2], on_step=False, on_epoch=True)
    # inferred batch sizes 4, 4, 2
    assert float(store.callback_metrics["x"]) == pytest.approx((4 + 8 + 8) / 10)
    store.close_epoch("train")
    for reduce_fx, expected in [
        ("sum", 7.0),
        ("max", 4.0),
        ("MIN", 1.0),
        (torch.sum, 7.0),
        (max, 4.0),
        (min, 1.0),
        (sum, 7.0),
        ("avg", 7.0 / 3),
        (torch.mean, 7.0 / 3),
    ]:
        store.reset_run()
        _train_epoch(store, [1.0, 4.0, 2.0], on_step=False, on_epoch=True, reduce_fx=reduce_fx)
        assert float(store.callback_metrics["x"]) == pytest.approx(expected), reduce_fx
    store.reset_run()
    _train_epoch(store, [1.0, 3.0], on_step=False, on_epoch=True, batch_size=3)
    assert float(store.callback_metrics["x"]) == pytest.approx(2.0)


def test_explicit_batch_size_wins_and_no_batch_means_one() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("validate")
    store.start_batch("validate", None, [torch.zeros(10, 1)])
    store.log("validation_step", "v", 1.0, stage="validate", batch_size=1)
    store.end_batch("validate")
    store.start_batch("validate", None, None)
    store.log("validation_step", "v", 4.0, stage="validate")
    store.end_batch("validate")
    store.end_epoch("validate")
    assert float(store.callback_metrics["v"]) == pytest.approx(2.5)


def test_dataloader_suffix_and_per_dataloader_outputs() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("validate")
    for dl, vals in enumerate([[1.0, 3.0], [10.0]]):
        for v in vals:
            store.start_batch("validate", dl, None)
            store.log("validation_step", "acc", v, stage="validate", dataloader_idx=dl)
            store.end_batch("validate")
    store.end_epoch("validate")
    store.log("on_validation_epoch_end", "final", 5.0, stage="validate")
    cb = store.callback_metrics
    assert float(cb["acc/dataloader_idx_0"]) == 2.0
    assert float(cb["acc/dataloader_idx_1"]) == 10.0
    assert float(cb["final"]) == 5.0
    out = store.close_epoch("validate")
    assert {k: float(v) for k, v in out.items()} == {
        "acc/dataloader_idx_0": 2.0,
        "acc/dataloader_idx_1": 10.0,
        "final": 5.0,
    }
    assert [{k: float(v) for k, v in d.items()} for d in store.eval_outputs] == [
        {"acc/dataloader_idx_0": 2.0, "final": 5.0},
        {"acc/dataloader_idx_1": 10.0, "final": 5.0},
    ]


def test_epoch_value_logged_in_step_visible_at_epoch_end_only() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("validate")
    store.start_batch("validate", None, None)
    store.log("validation_step", "v", 3.0, stage="validate")
    store.log("validation_step", "s", 1.0, stage="validate", on_step=True, on_epoch=False)
    # evaluation step values never reach callback_metrics; epoch values wait for the epoch end
    assert store.callback_metrics == {}
    assert set(store.logged_metrics) == {"s"}
    store.end_batch("validate")
    store.end_epoch("validate")
    assert float(store.callback_metrics["v"]) == 3.0  # the running reduction
    assert "s" not in store.callback_metrics


def test_step_values_merged_at_end_batch_without_reads() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("validate")
    store.start_batch("validate", None, None)
    store.log("validation_step", "s", 1.0, stage="validate", on_step=True, on_epoch=False)
    step = store.end_batch("validate")
    assert {k: float(v) for k, v in step.items()} == {"s": 1.0}
    store.end_epoch("validate")
    store.close_epoch("validate")
    # nobody read during the batch; the step value was still stored at end_batch (as Lightning)
    assert float(store.logged_metrics["s"]) == 1.0


def test_value_logged_in_epoch_end_hook_visible_to_next_reader() -> None:
    store = MetricStore()
    store.reset_run()
    _train_epoch(store, [1.0])
    assert "ep" not in store.callback_metrics
    store.log("on_train_epoch_end", "ep", 9.0, stage="train")  # the module's hook
    assert float(store.callback_metrics["ep"]) == 9.0  # a monitoring callback right after
    store.close_epoch("train")


def test_sanity_check_is_discarded() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("sanity_check")
    store.start_batch("sanity_check", None, None)
    store.log("validation_step", "v", 1.0, stage="sanity_check", on_step=True, on_epoch=True)
    assert store.end_batch("sanity_check") == {}  # nothing goes to the loggers
    store.end_epoch("sanity_check")
    assert float(store.callback_metrics["v"]) == 1.0  # visible to sanity-check callbacks
    assert store.close_epoch("sanity_check") == {}
    assert "v" in store.callback_metrics
    store.discard_stage("sanity_check")
    assert store.callback_metrics == {} and store.logged_metrics == {} and store.progress_bar_metrics == {}
    _train_epoch(store, [2.0], on_step=False, on_epoch=True)
    assert set(store.callback_metrics) == {"x"}


def test_validation_inside_training_epoch_returns_to_training() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)
    store.log("training_step", "loss", 1.0, stage="train", on_step=True, on_epoch=False)
    store.end_batch("train")
    store.start_epoch("validate")
    assert store.active_stage == "validate"
    store.start_batch("validate", None, None)
    store.log("validation_step", "val", 2.0, stage="validate")
    store.end_batch("validate")
    store.end_epoch("validate")
    store.close_epoch("validate")
    assert store.active_stage == "train"
    store.start_batch("train", None, None)
    store.log("training_step", "loss", 3.0, stage="train", on_step=True, on_epoch=False)
    assert float(store.callback_metrics["loss"]) == 3.0
    assert float(store.callback_metrics["val"]) == 2.0
    store.end_batch("train")
    store.end_epoch("train")
    store.close_epoch("train")
    assert store.active_stage is None


def test_epochs_reset_accumulators_but_keep_keys() -> None:
    store = MetricStore()
    store.reset_run()
    _train_epoch(store, [1.0, 3.0], on_step=False, on_epoch=True, reduce_fx="sum")
    store.close_epoch("train")
    _train_epoch(store, [10.0], on_step=False, on_epoch=True, reduce_fx="sum")
    assert float(store.callback_metrics["x"]) == 10.0
    store.close_epoch("train")
    store.reset_run()
    assert store.callback_metrics == {}


def test_reads_are_cached_until_something_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightcycle.core import results as lc_results

    calls = []
    original = lc_results._Collection.view

    def counting(self: Any, on_step: bool) -> Any:
        calls.append(on_step)
        return original(self, on_step)

    monkeypatch.setattr(lc_results._Collection, "view", counting)
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)
    store.log("training_step", "x", 1.0, stage="train", on_step=True, on_epoch=False, prog_bar=True)
    first = store.callback_metrics
    pbar = store.progress_bar_metrics
    n = len(calls)
    for _ in range(5):
        assert store.callback_metrics is first
        assert store.logged_metrics
        assert store.progress_bar_metrics is pbar
    assert len(calls) == n == 1
    store.log("training_step", "x", 2.0, stage="train", on_step=True, on_epoch=False, prog_bar=True)
    assert float(store.callback_metrics["x"]) == 2.0
    assert store.progress_bar_metrics == {"x": 2.0}
    assert len(calls) == 2


def test_log_path_never_reads_device_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Meta tensors have no data: any host read (.item(), float(), printing) would raise."""

    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("host-device sync on the logging path")

    for attr in ("item", "tolist", "__float__", "__int__", "__bool__", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, attr, forbidden)
    meta = torch.device("meta")
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    for step in range(3):
        store.start_batch("train", None, [torch.zeros(4, 2, device=meta)])
        for name, kw in [
            ("mean", {}),
            ("sum", {"reduce_fx": "sum"}),
            ("max", {"reduce_fx": "max"}),
            ("min", {"reduce_fx": torch.min}),
        ]:
            store.log(
                "training_step",
                name,
                torch.ones((), device=meta) * step,
                stage="train",
                on_step=True,
                on_epoch=True,
                prog_bar=False,
                **kw,
            )
        store.log(
            "training_step",
            "half",
            torch.ones(1, device=meta, dtype=torch.float16),
            stage="train",
            on_step=True,
            on_epoch=True,
        )
        assert store.callback_metrics["mean"].device == meta
        store.end_batch("train")
    store.end_epoch("train")
    metrics = store.callback_metrics
    assert {"mean_epoch", "sum_epoch", "max_epoch", "min_epoch", "half_epoch"} <= set(metrics)
    assert all(v.device == meta for v in metrics.values())
    assert metrics["half_epoch"].dtype == torch.float32
    out = store.close_epoch("train")
    assert all(v.device == meta for v in out.values())


def test_logged_tensor_is_detached_and_copied() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)
    w = torch.ones((), requires_grad=True)
    value = w * 2
    store.log("training_step", "g", value, stage="train", on_step=True, on_epoch=False)
    buffer = torch.tensor([5.0])
    store.log("training_step", "buf", buffer, stage="train", on_step=True, on_epoch=False)
    buffer.fill_(0.0)  # the caller reuses its buffer
    cb = store.callback_metrics
    assert not cb["g"].requires_grad and cb["g"].grad_fn is None
    assert float(cb["buf"]) == 5.0 and cb["buf"].shape == ()
    assert store.progress_bar_metrics == {}
    assert all(isinstance(v, Tensor) for v in cb.values())


def test_dtypes() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)

    def log(name: str, value: Any) -> None:
        store.log("training_step", name, value, stage="train", on_step=True, on_epoch=False)

    log("f64", torch.tensor(1.0, dtype=torch.float64))
    log("bf16", torch.tensor(1.0, dtype=torch.bfloat16))
    log("py", 3)
    with pytest.warns(UserWarning, match="needs to be floating"):
        log("i", torch.tensor(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log("i", torch.tensor(3))  # warned once per key
    cb = store.callback_metrics
    assert cb["f64"].dtype == torch.float64
    assert cb["bf16"].dtype == torch.float32
    assert cb["py"].dtype == torch.float32 and float(cb["py"]) == 3.0
    assert cb["i"].dtype == torch.float32 and float(cb["i"]) == 3.0


def test_progress_bar_metrics_are_floats() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)
    kw: dict[str, Any] = {"stage": "train", "on_step": True, "on_epoch": False, "prog_bar": True}
    store.log("training_step", "a", torch.tensor(1.5, dtype=torch.float64), **kw)
    store.log("training_step", "b", 2.5, **kw)
    pbar = store.progress_bar_metrics
    assert pbar == {"a": 1.5, "b": 2.5}
    assert all(type(v) is float for v in pbar.values())


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (torch.ones(2), ValueError, "single element"),
        ("1.0", TypeError, "only Python numbers"),
        ({"a": 1.0}, TypeError, "log_dict"),
        ([1.0], TypeError, "only Python numbers"),
        (1 + 2j, TypeError, "only Python numbers"),
    ],
)
def test_rejects_bad_values(value: Any, error: type[Exception], match: str) -> None:
    store = MetricStore()
    with pytest.raises(error, match=match):
        store.log("training_step", "x", value, stage="train")


def test_rejects_bad_arguments() -> None:
    store = MetricStore()
    with pytest.raises(MisconfigurationException, match="is not useful"):
        store.log("training_step", "x", 1.0, stage="train", on_step=False, on_epoch=False)
    with pytest.raises(MisconfigurationException, match="reduce_fx"):
        store.log("training_step", "x", 1.0, stage="train", reduce_fx="median")
    with pytest.raises(MisconfigurationException, match="reduce_fx"):
        store.log("training_step", "x", 1.0, stage="train", reduce_fx=torch.median)
    with pytest.raises(MisconfigurationException, match="dataloader_idx"):
        store.log("validation_step", "x/dataloader_idx_0", 1.0, stage="validate")
    store.log("validation_step", "x/dataloader_idx_0", 1.0, stage="validate", add_dataloader_idx=False)
    with pytest.raises(ValueError, match="unknown stage"):
        store.log("training_step", "x", 1.0, stage="training")
    with pytest.raises(ValueError, match="unknown stage"):
        store.start_epoch("fit")


def test_same_key_with_different_arguments() -> None:
    store = MetricStore()
    store.log("training_step", "x", 1.0, stage="train", prog_bar=True)
    store.log("training_step", "x", 1.0, stage="train", prog_bar=True)
    with pytest.raises(
        MisconfigurationException, match=r"`self.log\('x', ...\)` twice in `training_step`.*prog_bar: True then False"
    ):
        store.log("training_step", "x", 1.0, stage="train")
    with pytest.raises(MisconfigurationException, match="reduce_fx: 'mean' then 'max'"):
        store.log("training_step", "x", 1.0, stage="train", prog_bar=True, reduce_fx="max")
    # same name from another hook is a different key
    store.log("on_train_batch_end", "x", 1.0, stage="train", reduce_fx="max")
    # several dataloaders without the suffix need distinct names
    store.log("validation_step", "v", 1.0, stage="validate", dataloader_idx=0, add_dataloader_idx=False)
    with pytest.raises(MisconfigurationException, match="dataloader_idx: 0 then 1"):
        store.log("validation_step", "v", 1.0, stage="validate", dataloader_idx=1, add_dataloader_idx=False)


def test_key_strings_built_once_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightcycle.core import results as lc_results

    created = []
    original = lc_results._Entry.__init__

    def counting(self: Any, *args: Any) -> None:
        created.append(args[:2])
        original(self, *args)

    monkeypatch.setattr(lc_results._Entry, "__init__", counting)
    store = MetricStore()
    store.reset_run()
    for _ in range(3):
        _train_epoch(store, [1.0, 2.0, 3.0], on_step=True, on_epoch=True)
        store.close_epoch("train")
    assert created == [("training_step", "x")]


def test_teardown_keeps_values() -> None:
    store = MetricStore()
    store.reset_run()
    _train_epoch(store, [1.0, 3.0], on_step=False, on_epoch=True)
    store.close_epoch("train")
    store.teardown()
    assert float(store.callback_metrics["x"]) == 2.0
    assert store.callback_metrics["x"].device.type == "cpu"


def test_extract_batch_size() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Batch:
        x: Tensor
        y: Tensor

    assert extract_batch_size(torch.zeros(7, 3)) == 7
    assert extract_batch_size(torch.tensor(1.0)) == 1
    assert extract_batch_size({"x": torch.zeros(5), "y": torch.zeros(5)}) == 5
    assert extract_batch_size([("id", torch.zeros(3, 2))]) == 3
    assert extract_batch_size(Batch(torch.zeros(6), torch.zeros(6, 2))) == 6
    with pytest.warns(UserWarning, match="ambiguous"):
        assert extract_batch_size([torch.zeros(2), torch.zeros(4)]) == 2
    with pytest.raises(MisconfigurationException, match="could not infer the batch_size"):
        extract_batch_size(["a", "b"])
    with pytest.raises(MisconfigurationException, match="could not infer the batch_size"):
        extract_batch_size(None)


def test_nan_max_propagates_like_lightning() -> None:
    store = MetricStore()
    store.reset_run()
    _train_epoch(store, [1.0, float("nan"), 2.0], on_step=False, on_epoch=True, reduce_fx="max")
    assert math.isnan(float(store.callback_metrics["x"]))


def test_start_epoch_keeps_pre_epoch_values_and_drops_abandoned_epochs() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.log("on_train_start", "early", 1.0, stage="train")
    store.start_epoch("train")  # the epoch proper: on_train_start's value counts toward it
    assert float(store.callback_metrics["early"]) == 1.0
    store.start_batch("train", None, None)
    store.log("training_step", "x", 5.0, stage="train", reduce_fx="sum")
    store.end_batch("train")
    store.start_epoch("train")  # previous epoch abandoned without end_epoch
    store.start_batch("train", None, None)
    store.log("training_step", "x", 1.0, stage="train", reduce_fx="sum")
    store.end_batch("train")
    store.end_epoch("train")
    assert float(store.callback_metrics["x"]) == 1.0
    assert "early" not in store.close_epoch("train")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_no_cuda_sync_on_log_path() -> None:
    device = torch.device("cuda")
    store = MetricStore()
    store.reset_run()
    values = torch.arange(12, dtype=torch.float32, device=device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for stage, fx in (("train", "training_step"), ("validate", "validation_step")):
            store.start_epoch(stage)
            for step in range(3):
                store.start_batch(stage, None, [torch.empty(4, 2, device=device)])
                for reduce_fx in ("mean", "sum", "max", "min"):
                    store.log(
                        fx,
                        reduce_fx,
                        values[step],
                        stage=stage,
                        on_step=True,
                        on_epoch=True,
                        reduce_fx=reduce_fx,
                        prog_bar=True,
                    )
                store.log(fx, "py", 1.5, stage=stage, on_step=True, on_epoch=True)
                assert store.callback_metrics is not None
                store.end_batch(stage)
            store.end_epoch(stage)
            assert store.callback_metrics["mean_epoch"].device.type == "cuda"
            store.close_epoch(stage)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert store.progress_bar_metrics["max_epoch"] == 2.0  # reading floats is where the sync happens


def test_str_enum_stages_share_the_collection() -> None:
    from enum import Enum

    class Stage(str, Enum):
        TRAINING = "train"

    store = MetricStore()
    store.reset_run()
    store.log("on_train_start", "a", 1.0, stage=Stage.TRAINING)  # before the stage is opened
    store.start_epoch("train")
    assert float(store.callback_metrics["a"]) == 1.0
    assert store.active_stage == "train" and type(store.active_stage) is str


def _floats(d: dict[str, Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items()}


def _lazy_or_eager_fit(lazy: bool) -> list[tuple[dict[str, float], ...]]:
    """Batches logging different keys, nobody reading between them; reads only after validation
    inside the epoch and at the end: the deferred view must store what merging every batch stored."""
    store = MetricStore()
    store.reset_run()
    seen = []
    for epoch in range(2):
        store.start_epoch("train")
        for b in range(4):
            store.start_batch("train", None, [torch.zeros(2, 1)])
            name = "a" if b % 2 == 0 else "b"
            store.log("training_step", name, float(epoch * 10 + b), stage="train", on_step=True, on_epoch=True)
            store.log("training_step", "p", float(b), stage="train", on_step=True, on_epoch=False, prog_bar=True)
            if lazy:
                assert store.close_batch("train")
            else:
                store.end_batch("train")
            if b == 1:  # validation inside the epoch (the training view must survive it)
                store.start_epoch("validate")
                store.start_batch("validate", None, None)
                store.log("validation_step", "v", 1.0 + epoch, stage="validate")
                store.end_batch("validate")
                store.end_epoch("validate")
                store.close_epoch("validate")
                seen.append(
                    (_floats(store.callback_metrics), _floats(store.logged_metrics), store.progress_bar_metrics)
                )
        store.end_epoch("train")
        store.close_epoch("train")
        seen.append(_read(store))
    return seen


def _read(store: MetricStore) -> tuple[dict[str, float], ...]:
    return _floats(store.callback_metrics), _floats(store.logged_metrics), store.progress_bar_metrics


def test_close_batch_defers_the_view_and_stores_the_same() -> None:
    eager = _lazy_or_eager_fit(lazy=False)
    assert "a_step" in eager[0][1] and "b_step" in eager[0][1]  # not vacuous: both batches' keys stored
    assert _lazy_or_eager_fit(lazy=True) == eager


def test_close_batch_builds_no_view_and_step_metrics_are_end_batchs(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightcycle.core.results import _Collection

    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)
    assert store.close_batch("train") is False  # nothing logged: nothing to ask for
    store.start_batch("train", None, None)
    store.log("training_step", "x", 2.0, stage="train", on_step=True, on_epoch=False)
    built: list[bool] = []
    original = _Collection.view
    monkeypatch.setattr(_Collection, "view", lambda self, on_step: built.append(on_step) or original(self, on_step))
    assert store.close_batch("train") is True
    assert built == []  # deferred
    assert _floats(store.step_metrics()) == {"x": 2.0}
    assert built == [True]


def test_eval_end_batch_builds_a_view_only_for_step_values_to_log(monkeypatch: pytest.MonkeyPatch) -> None:
    # An evaluation batch whose keys send no step value to the loggers has nothing to return: its
    # view is merged when read or when the dataloader / epoch ends, and the same values are stored.
    from lightcycle.core.results import _Collection

    store = MetricStore()
    store.reset_run()
    built: list[bool] = []
    original = _Collection.view
    monkeypatch.setattr(_Collection, "view", lambda self, on_step: built.append(on_step) or original(self, on_step))
    store.start_epoch("validate")
    for dl in (0, 1):
        for b in range(2):
            store.start_batch("validate", dl, None)
            store.log("validation_step", "v", float(dl * 10 + b), stage="validate")
            store.log(
                "validation_step",
                "p",
                float(b),
                stage="validate",
                on_step=True,
                on_epoch=False,
                logger=False,
                prog_bar=True,
            )
            assert store.end_batch("validate") == {}
            # no view per batch: when the dataloader changed, its step view merged once and its epoch values
            assert built == [True, False] * dl
    assert store.progress_bar_metrics == {"p/dataloader_idx_0": 1.0, "p/dataloader_idx_1": 1.0}
    store.end_epoch("validate")
    out = store.close_epoch("validate")
    assert _floats(out) == {"v/dataloader_idx_0": 0.5, "v/dataloader_idx_1": 10.5}
    assert store.progress_bar_metrics == {"p/dataloader_idx_0": 1.0, "p/dataloader_idx_1": 1.0}
    # a key that logs its step value: end_batch returns it (the loggers get it every batch)
    store.start_epoch("test")
    store.start_batch("test", None, None)
    store.log("test_step", "s", 3.0, stage="test", on_step=True, on_epoch=False)
    assert _floats(store.end_batch("test")) == {"s": 3.0}


def test_log_site_reuses_checks_and_keeps_errors() -> None:
    """A call site seen before skips the argument checks; new arguments at it still fail as before."""
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)
    site = ("training_step", "x", "train", False, None, None, None, "mean", True, None)
    assert store.log_site(site, torch.tensor(1.0), None) is False  # new: the full path
    store.log("training_step", "x", torch.tensor(1.0), stage="train", on_step=True, on_epoch=True, site=site)
    assert store.log_site(site, torch.tensor(3.0), None) is True
    assert float(store.callback_metrics["x_step"]) == 3.0
    store.log("training_step", "x", torch.tensor(5.0), stage="train", on_step=True, on_epoch=True)
    with pytest.raises(ValueError, match="single element"):
        store.log_site(site, torch.ones(2), None)
    with pytest.raises(MisconfigurationException, match="twice in `training_step` with different arguments"):
        store.log("training_step", "x", torch.tensor(1.0), stage="train", on_step=True, on_epoch=True, prog_bar=True)
    store.end_batch("train")
    store.end_epoch("train")
    assert float(store.callback_metrics["x_epoch"]) == 3.0  # (1 + 3 + 5) / 3, each weighted by 1
    unhashable = (*site[:7], ["mean"], *site[8:])
    assert store.log_site(unhashable, torch.tensor(1.0), None) is False
    store.reset_run()
    assert store.log_site(site, torch.tensor(1.0), None) is False  # a new run forgets the sites
