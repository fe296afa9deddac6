"""lightcycle.demos against Lightning's own demos: the same seeded programs give the same hooks, metrics, weights."""

from __future__ import annotations

import types
import warnings
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning
import pytorch_lightning.demos.boring_classes as pl_boring
import pytorch_lightning.demos.transformer as pl_transformer
import torch

import lightcycle
import lightcycle.demos.boring_classes as lc_boring
import lightcycle.demos.transformer as lc_transformer
from tests.recording import BASE_KWARGS, build, jsonable

FRAMEWORKS = [(pytorch_lightning, pl_boring), (lightcycle, lc_boring)]

# Module hooks recorded around the demo's own methods (the callback records the rest with full context).
MODULE_HOOKS = (
    "setup",
    "configure_optimizers",
    "train_dataloader",
    "val_dataloader",
    "test_dataloader",
    "predict_dataloader",
    "training_step",
    "validation_step",
    "test_step",
    "predict_step",
    "optimizer_step",
    "lr_scheduler_step",
    "on_train_epoch_end",
    "teardown",
)


def traced(cls: type, events: list[Any]) -> type:
    """A subclass of demo class ``cls`` that records each module hook call, then runs ``cls``'s own."""

    def make(name: str) -> Any:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            events.append({"src": "module", "hook": name, "args": jsonable([a for a in args if isinstance(a, int)])})
            return getattr(super(sub, self), name)(*args, **kwargs)

        return method

    sub = type(f"Traced{cls.__name__}", (cls,), {n: make(n) for n in MODULE_HOOKS if hasattr(cls, n)})
    return sub


def logging_subclass(cls: type) -> type:
    """The user's usual move: subclass a demo model and log its losses (written once for both frameworks)."""

    class Logged(cls):  # type: ignore[misc,valid-type]
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            out = super().training_step(batch, batch_idx)
            self.log("train_loss", out["loss"] if isinstance(out, dict) else out, prog_bar=True)
            return out

        def validation_step(self, batch: Any, batch_idx: int) -> Any:
            out = super().validation_step(batch, batch_idx)
            self.log("val_loss", out["x"])
            return out

        def test_step(self, batch: Any, batch_idx: int) -> Any:
            out = super().test_step(batch, batch_idx)
            self.log("test_loss", out["y"])
            return out

    return Logged


def run(
    pl: types.ModuleType, boring: types.ModuleType, model_name: str, data_name: str | None, tmp: Path, **trainer: Any
) -> dict[str, Any]:
    ns = build(pl)
    pl.seed_everything(7, verbose=False)
    model_cls = getattr(boring, model_name)
    if model_name != "DemoModel":
        model_cls = logging_subclass(model_cls)
    model = traced(model_cls, ns.events)()
    datamodule = getattr(boring, data_name)() if data_name else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = pl.Trainer(**{**BASE_KWARGS, **trainer}, callbacks=[ns.RecordingCallback()], default_root_dir=str(tmp))
        t.fit(model, datamodule=datamodule)
        fit_metrics = {k: float(v) for k, v in t.callback_metrics.items()}
        results = {}
        if model_name != "DemoModel":
            results["validate"] = t.validate(model, datamodule=datamodule, verbose=False)
            results["test"] = t.test(model, datamodule=datamodule, verbose=False)
        preds = t.predict(model, datamodule=datamodule)
    return {
        "events": ns.events,
        "fit_metrics": fit_metrics,
        "results": results,
        "predictions": torch.cat([p.reshape(-1) for p in preds]) if preds else None,
        "weights": {k: v.clone() for k, v in model.state_dict().items()},
        "global_step": t.global_step,
    }


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert len(a["events"]) == len(b["events"])
    for i, (x, y) in enumerate(zip(a["events"], b["events"], strict=True)):
        assert x == y, f"event {i}: Lightning {x} != lightcycle {y}"
    assert a["fit_metrics"] == b["fit_metrics"]
    assert a["results"] == b["results"]
    assert a["global_step"] == b["global_step"]
    assert a["weights"].keys() == b["weights"].keys()
    for k in a["weights"]:
        assert torch.equal(a["weights"][k], b["weights"][k]), k
    assert (a["predictions"] is None) == (b["predictions"] is None)
    if a["predictions"] is not None:
        assert torch.equal(a["predictions"], b["predictions"])


@pytest.mark.parametrize(
    ("model", "data", "trainer"),
    [
        ("BoringModel", None, {"max_epochs": 2, "limit_train_batches": 4, "limit_val_batches": 2}),
        ("BoringModel", "BoringDataModule", {"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 2}),
        ("ManualOptimBoringModel", None, {"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 2}),
        ("BoringModel", "BoringDataModuleNoLen", {"max_steps": 3, "limit_val_batches": 2, "val_check_interval": 2}),
        ("DemoModel", "BoringDataModule", {"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 0}),
    ],
)
def test_demo_fit_matches_lightning(model: str, data: str | None, trainer: dict[str, Any], tmp_path: Path) -> None:
    limits = {"limit_test_batches": 2, "limit_predict_batches": 2, **trainer}
    ours = run(lightcycle, lc_boring, model, data, tmp_path / "lc", **limits)
    theirs = run(pytorch_lightning, pl_boring, model, data, tmp_path / "pl", **limits)
    assert ours["events"], "nothing recorded"
    assert_same(theirs, ours)


def test_same_names_and_defaults_as_lightning() -> None:
    import inspect

    import pytorch_lightning.demos as pl_demos

    import lightcycle.demos as lc_demos

    assert sorted(lc_demos.__all__) == sorted(pl_demos.__all__)
    lightning_names = {
        n for n, v in vars(pl_boring).items() if isinstance(v, type) and v.__module__ == pl_boring.__name__
    }
    assert lightning_names <= set(lc_boring.__all__)
    for name in [*lightning_names, "Transformer", "WikiText2", "LightningTransformer"]:
        src = pl_boring if hasattr(pl_boring, name) else pl_transformer
        ours = lc_boring if hasattr(lc_boring, name) else lc_transformer

        def params(cls: Any) -> list[tuple[str, Any]]:
            return [(p.name, p.default) for p in inspect.signature(cls).parameters.values()]

        assert params(getattr(ours, name)) == params(getattr(src, name)), name


def test_datasets_draw_the_same_numbers(tmp_path: Path) -> None:
    for pl_cls, lc_cls, n in [("RandomDataset", "RandomDataset", 5), ("RandomDictDataset", "RandomDictDataset", 5)]:
        torch.manual_seed(3)
        theirs = getattr(pl_boring, pl_cls)(4, n)
        torch.manual_seed(3)
        ours = getattr(lc_boring, lc_cls)(4, n)
        assert len(ours) == len(theirs) == n
        for i in range(n):
            assert str(ours[i]) == str(theirs[i])
    for name in ("RandomIterableDataset", "RandomIterableDatasetWithLen"):
        torch.manual_seed(3)
        theirs_items = list(getattr(pl_boring, name)(4, 3))
        torch.manual_seed(3)
        ours_items = list(getattr(lc_boring, name)(4, 3))
        assert all(torch.equal(x, y) for x, y in zip(theirs_items, ours_items, strict=True))
    assert len(lc_boring.RandomIterableDatasetWithLen(4, 3)) == 3
    assert not hasattr(lc_boring.RandomIterableDataset(4, 3), "__len__")
    torch.manual_seed(0)
    x = torch.randn(2, 1, 28, 28)
    torch.manual_seed(1)
    theirs_net = pl_boring.Net().eval()
    torch.manual_seed(1)
    ours_net = lc_boring.Net().eval()
    assert torch.equal(theirs_net(x), ours_net(x))


def test_transformer_trains_like_lightning_on_the_same_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lightning reads ./data/wikitext-2.txt when present (its download is skipped); give both the same file.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "wikitext-2.txt").write_text("\n".join(lc_transformer.synthetic_corpus(vocab=50, tokens=2000)))
    monkeypatch.chdir(tmp_path)
    outcomes = []
    for pl, mod in [(pytorch_lightning, pl_transformer), (lightcycle, lc_transformer)]:
        dataset = mod.WikiText2(download=False)
        pl.seed_everything(1, verbose=False)
        model = mod.LightningTransformer(vocab_size=dataset.vocab_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = pl.Trainer(**BASE_KWARGS, max_steps=3, default_root_dir=str(tmp_path / pl.__name__))
            t.fit(model)
        outcomes.append((len(dataset), dataset.vocab_size, dataset[3], model.state_dict()))
    (n1, v1, item1, w1), (n2, v2, item2, w2) = outcomes
    assert (n1, v1) == (n2, v2)
    assert all(torch.equal(a, b) for a, b in zip(item1, item2, strict=True))
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_wikitext2_without_the_file_is_synthetic_and_leaves_the_seed_alone(tmp_path: Path) -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    dataset = lc_transformer.WikiText2(data_dir=tmp_path)
    assert torch.equal(torch.rand(3), expected)
    assert dataset.synthetic and not (tmp_path / "wikitext-2.txt").exists()
    assert 0 < dataset.vocab_size <= lc_transformer.SYNTHETIC_VOCAB + 1
    inputs, target = dataset[0]
    assert inputs.shape == target.shape == (35,)
    assert torch.equal(inputs[1:], target[:-1])


def test_mnist_demo_is_refused_with_the_alternatives() -> None:
    from lightcycle.demos.mnist_datamodule import MNIST, MNISTDataModule

    for factory in (MNISTDataModule, MNIST):
        with pytest.raises(RuntimeError, match=r"downloads the MNIST dataset.*BoringDataModule"):
            factory("./data")
