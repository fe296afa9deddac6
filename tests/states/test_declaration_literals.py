"""Every name the declaration fires is written out in ``declaration.py``, so grep finds it.

The declaration is the single source of the hook order; a reader who greps it for
``on_validation_batch_start`` must find the line that fires it, not an f-string.
"""

from __future__ import annotations

import re
from pathlib import Path

from lightcycle.states import declaration as ev
from lightcycle.states.table import TransitionTable

SOURCE = Path(ev.__file__).read_text()


def _literal(name: str) -> bool:
    return re.search(rf"""["']{re.escape(name)}["']""", SOURCE) is not None


def test_every_hook_of_the_compiled_table_is_a_literal_in_the_declaration() -> None:
    table = TransitionTable(ev.LIFECYCLE)
    names = {h.name for row in table.rows for entry in row.values() for h in entry.transition.hooks}
    assert len(names) > 60  # the table holds every hook of every noun
    missing = sorted(n for n in names if not _literal(n))
    assert not missing, f"hook names built at run time, not written in declaration.py: {missing}"


def test_every_event_of_the_compiled_table_is_a_literal_in_the_declaration() -> None:
    table = TransitionTable(ev.LIFECYCLE)
    names = {t.name for row in table.rows for t in row}
    missing = sorted(n for n in names if not _literal(n))
    assert not missing, f"event names built at run time, not written in declaration.py: {missing}"


def test_each_evaluation_noun_names_its_own_hooks() -> None:
    for noun, e in ev.EVAL.items():
        for field in ("start", "epoch_start", "batch_start", "batch_end", "epoch_end", "end"):
            assert getattr(e.hooks, field) == f"on_{noun}_{field}"
            assert getattr(e, field).name == f"{noun}_{field}"
        assert e.step_hook == e.step.name == f"{noun}_step"
        assert e.loader.name == f"{e.kind}_dataloader"


def test_no_hook_or_event_name_is_built_with_an_f_string() -> None:
    built = re.findall(r'(?:Event|Hook|cb|lm|dm|cb_lm|_loader)\(\s*f"', SOURCE)
    assert not built, built


def test_the_lifecycle_can_be_grepped_for_every_noun() -> None:
    for name in (
        "on_validation_batch_start",
        "on_test_batch_start",
        "on_predict_batch_start",
        "on_sanity_check_start",
        "on_validation_model_zero_grad",
        "on_test_model_train",
        "val_dataloader",
    ):
        assert SOURCE.count(name) >= 1, name
