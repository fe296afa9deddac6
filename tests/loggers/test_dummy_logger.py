"""``DummyLogger`` (``lightning.pytorch.loggers.logger``): what it answers, against Lightning's (differential)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import pytorch_lightning as pl
from pytorch_lightning.loggers import logger as pl_logger

import lightcycle as lc
from lightcycle.loggers import logger as lc_logger
from tests import kit


def _answers(module: Any) -> dict[str, Any]:
    dummy = module.DummyLogger()
    return {
        "is_logger": isinstance(dummy, module.Logger),
        "name": dummy.name,
        "version": dummy.version,
        "save_dir": dummy.save_dir,
        "log_dir": dummy.log_dir,
        "root_dir": dummy.root_dir,
        "log_metrics": dummy.log_metrics({"a": 1.0}, step=0),
        "log_hyperparams": dummy.log_hyperparams({"lr": 0.1}),
        "any_method": dummy.log_image(key="x", images=[]),  # a method only some loggers have
        "indexed_is_self": dummy[0] is dummy,
        "experiment": type(dummy.experiment).__name__,
        "experiment_call": dummy.experiment.add_scalar("x", 1.0),
        "experiment_index": type(dummy.experiment[0]).__name__,
    }


def test_dummy_logger_answers_as_lightning_s() -> None:
    assert _answers(lc_logger) == _answers(pl_logger)
    assert lc_logger.DummyExperiment is type(lc_logger.DummyLogger().experiment)


def test_dummy_logger_copies() -> None:
    # Lightning's answers __deepcopy__ with a no-op (deepcopy gives None); ours stays a plain object
    assert isinstance(copy.deepcopy(lc_logger.DummyLogger()), lc_logger.DummyLogger)
    with pytest.raises(AttributeError):
        lc_logger.DummyLogger().__wrapped__  # noqa: B018 (the attribute access is the test)


@pytest.mark.parametrize("fw", [lc, pl])
def test_fast_dev_run_puts_a_dummy_logger_in_place(tmp_path: Any, fw: Any) -> None:
    model = kit.linear_module_class(fw, train_data=kit.regression_loader)()
    trainer = fw.Trainer(**kit.quiet(logger=True, fast_dev_run=True, default_root_dir=tmp_path))
    trainer.fit(model)
    module = lc_logger if fw is lc else pl_logger
    assert type(trainer.logger) is module.DummyLogger
    assert [type(x) for x in trainer.loggers] == [module.DummyLogger]
    assert list(tmp_path.iterdir()) == []
