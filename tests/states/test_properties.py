"""Properties of every completed run, over drawn Trainer configurations and entry points.

Each drawn run goes through ``lightcycle.Trainer(..., checked=True)`` (every step proven
against the ``transitions`` machine before it runs) with a probing recorder, and must satisfy the
structural invariants of the hook order, written here from the spec (not read from the
declaration):

- setup comes first and teardown last (datamodule → callbacks → module);
- every ``on_X_start`` is closed by its ``on_X_end``, properly nested;
- the per-batch order of automatic and manual optimization (spec 3.1, 3.2, 3.15);
- counts that must agree: ``on_train_batch_end`` per trained batch,
  ``on_before_optimizer_step`` per ``global_step`` increment, ``on_before_zero_grad`` per
  accumulation window, sanity and in-fit validation runs per the interval rules;
- ``trainer.sanity_checking/training/validating/testing/predicting``, ``state.stage``,
  ``state.status`` and ``module.training`` match the hook being fired;
- the trace passes ``lightcycle verify``;
- checked mode agrees with the table (it confirms transitions and raises on no
  disagreement) and changes nothing: the unchecked run's trace is identical.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

from lightcycle.engine.checked import machine_answer
from lightcycle.states.stages import TrainerStatus
from lightcycle.verify import verify_trace
from tests.faults import Config, Run, make_run

TraceEvent = dict[str, Any]
_STAGE_OF_FN = {"fit": "train", "validate": "validate", "test": "test", "predict": "predict"}


# --------------------------------------------------------------------------- drawing


@st.composite
def configs(draw: st.DrawFn) -> Config:
    entry = draw(st.sampled_from(["fit"] * 4 + ["validate", "test", "predict"]))
    datamodule = draw(st.booleans())
    n_eval = draw(st.integers(1, 3))
    if entry != "fit":
        limit_key = f"limit_{ {'validate': 'val'}.get(entry, entry) }_batches"
        limit = draw(st.sampled_from([None, 1, 2]))
        return Config(
            entry=entry, datamodule=datamodule, batches=(1, n_eval), trainer={} if limit is None else {limit_key: limit}
        )
    n_train = draw(st.integers(1, 4))
    manual = draw(st.booleans())
    trainer: dict[str, Any] = dict(
        max_epochs=draw(st.integers(1, 3)),
        num_sanity_val_steps=draw(st.integers(0, 2)),
        limit_val_batches=draw(st.integers(0, 2)),
        check_val_every_n_epoch=draw(st.sampled_from([1, 1, 2])),
    )
    interval = draw(st.sampled_from([None, 0.5] + [k for k in (1, 2) if k <= n_train]))
    if interval is not None:
        trainer["val_check_interval"] = interval
    if not manual:
        trainer["accumulate_grad_batches"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        trainer["max_steps"] = draw(st.integers(1, 6))
    return Config(
        trainer=trainer,
        entry="fit",
        datamodule=datamodule,
        manual=manual,
        batches=(n_train, n_eval),
        skip_at=draw(st.none() | st.tuples(st.integers(0, 2), st.integers(0, n_train - 1))),
        stop_at=draw(st.none() | st.tuples(st.integers(0, 2), st.integers(0, n_train - 1))),
        scheduler=None if manual else draw(st.sampled_from([None, "step", "epoch"])),
        checkpointing=draw(st.booleans()),
    )


# --------------------------------------------------------------------------- oracle (spec 3.1-3.10)


def expected_fit(cfg: Config) -> dict[str, int]:
    """Counts a fit must produce, simulated from the spec's rules for this small model."""
    tr = cfg.trainer
    n = cfg.batches[0]
    acc = tr.get("accumulate_grad_batches", 1)
    max_steps = tr.get("max_steps", -1)
    every = tr["check_val_every_n_epoch"]
    val_on = tr["limit_val_batches"] > 0
    interval = tr.get("val_check_interval", 1.0)
    check_batch = interval if isinstance(interval, int) else max(1, int(n * interval))
    out = Counter(sanity=int(val_on and tr["num_sanity_val_steps"] > 0))
    step = 0
    stop = False
    for epoch in range(tr["max_epochs"]):
        if (max_steps != -1 and step >= max_steps) or stop:
            break
        out["epochs"] += 1
        val_epoch = val_on and (epoch + 1) % every == 0
        for i in range(n):
            out["batch_starts"] += 1
            if cfg.skip_at == (epoch, i):
                out["skipped"] += 1
                break
            out["trained"] += 1
            out["zero_grads"] += int(not cfg.manual and i % acc == 0)
            if cfg.manual or (i + 1) % acc == 0 or i == n - 1:
                step += 1
            if cfg.stop_at == (epoch, i):
                stop = True
            if val_epoch and (stop or (i + 1) % check_batch == 0):
                out["validations"] += 1
            if (max_steps != -1 and step >= max_steps) or stop:
                break
    out["steps"] = step
    return dict(out)


# --------------------------------------------------------------------------- invariants


def _cb(events: list[TraceEvent], hook: str) -> list[TraceEvent]:
    return [e for e in events if e["src"] == "callback" and e["hook"] == hook]


def check_setup_first_teardown_last(events: list[TraceEvent], cfg: Config) -> None:
    hooks = [(e["src"], e["hook"]) for e in events]
    callback_hooks = [h for s, h in hooks if s == "callback"]
    assert callback_hooks[0] == "setup" and callback_hooks[-1] == "teardown", callback_hooks
    assert callback_hooks.count("setup") == 1 and callback_hooks.count("teardown") == 1
    i = hooks.index(("callback", "setup"))
    before = {h for s, h in hooks[:i] if s != "callback"}
    assert before <= {"configure_callbacks", "prepare_data", "setup"}, before
    assert hooks[i + 1] == ("module", "setup")
    tail = [("callback", "teardown"), ("module", "teardown")]
    if cfg.datamodule:
        assert hooks[i - 1] == ("datamodule", "setup")
        tail.insert(0, ("datamodule", "teardown"))
    assert hooks[-len(tail) :] == tail, hooks[-4:]
    for e in events:
        assert e["ctx"]["status"] == "running", e


_BRACKET = re.compile(r"on_(\w+)_(start|end)$")


def check_nesting(events: list[TraceEvent], skipped: list[tuple[int, int]]) -> None:
    stack: list[str] = []
    for e in events:
        if e["src"] != "callback":
            continue
        m = _BRACKET.match(e["hook"])
        if m is None:
            continue
        what, edge = m.groups()
        if edge == "start":
            if what == "train_batch" and (e["ctx"]["epoch"], e["args"]["batch_idx"]) in skipped:
                continue  # -1 from the module's on_train_batch_start: no on_train_batch_end (spec 3.10)
            stack.append(what)
        else:
            assert stack and stack[-1] == what, f"on_{what}_end closes {stack[-1:] or 'nothing'}; open: {stack}"
            stack.pop()
    assert not stack, f"never closed: {stack}"


_TRANSFER = ["on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"]


def _pair(hook: str) -> list[tuple[str, str]]:
    return [("callback", hook), ("module", hook)]


def expected_batch(cfg: Config, i: int) -> list[tuple[str, str]]:
    """A trained batch's hooks from its on_train_batch_start to on_train_batch_end (spec 3.1, 3.2, 3.15)."""
    out = _pair("on_train_batch_start")
    if cfg.manual:
        out += [("module", "training_step"), *_pair("on_before_backward"), ("module", "backward")]
        out += [*_pair("on_after_backward"), *_pair("on_before_optimizer_step")]
        return out + _pair("on_train_batch_end")
    acc = cfg.trainer.get("accumulate_grad_batches", 1)
    steps = (i + 1) % acc == 0 or i == cfg.batches[0] - 1
    if steps:
        out.append(("module", "optimizer_step"))
    out.append(("module", "training_step"))
    if i % acc == 0:
        out += [*_pair("on_before_zero_grad"), ("module", "optimizer_zero_grad")]
    out += [*_pair("on_before_backward"), ("module", "backward"), *_pair("on_after_backward")]
    if steps:
        out += [*_pair("on_before_optimizer_step"), ("module", "configure_gradient_clipping")]
    return out + _pair("on_train_batch_end")


def check_batches(events: list[TraceEvent], cfg: Config, skipped: list[tuple[int, int]]) -> None:
    pairs = [(e["src"], e["hook"]) for e in events]
    for k, e in enumerate(events):
        if (e["src"], e["hook"]) != ("callback", "on_train_batch_start"):
            continue
        assert [h for s, h in pairs[k - 3 : k]] == _TRANSFER, pairs[k - 3 : k]
        i = e["args"]["batch_idx"]
        if (e["ctx"]["epoch"], i) in skipped:
            assert pairs[k + 1] == ("module", "on_train_batch_start")
            assert ("callback", "on_train_batch_end") not in pairs[k + 2 : k + 3]
            continue
        end = pairs.index(("module", "on_train_batch_end"), k)
        got = [p for p in pairs[k : end + 1] if p != ("module", "lr_scheduler_step")]
        assert got == expected_batch(cfg, i), f"batch {i}: {got}"
        schedulers = [p for p in pairs[k : end + 1] if p == ("module", "lr_scheduler_step")]
        assert len(schedulers) <= 1
        if schedulers:  # steps after the optimizer step, before on_train_batch_end (spec 3.1 step 34)
            assert pairs[end - 2] == ("module", "lr_scheduler_step")


def check_counts(run: Run, events: list[TraceEvent], skipped: list[tuple[int, int]]) -> None:
    cfg, trainer = run.cfg, run.trainer
    starts, ends = _cb(events, "on_train_batch_start"), _cb(events, "on_train_batch_end")
    assert len(ends) == len(starts) - len(skipped), "one on_train_batch_end per trained batch"
    assert len(_cb(events, "on_before_optimizer_step")) == trainer.global_step, "one per global_step increment"
    zero = _cb(events, "on_before_zero_grad")
    acc = cfg.trainer.get("accumulate_grad_batches", 1)
    windows = [e for e in ends if not cfg.manual and e["args"]["batch_idx"] % acc == 0]
    assert len(zero) == len(windows), "one on_before_zero_grad per accumulation window"
    want = expected_fit(cfg)
    note(f"expected: {want}")
    sanity_runs = [e for e in _cb(events, "on_validation_start") if e["ctx"]["sanity"]]
    fit_runs = [e for e in _cb(events, "on_validation_start") if not e["ctx"]["sanity"]]
    assert len(_cb(events, "on_sanity_check_start")) == want["sanity"] == len(sanity_runs)
    assert len(fit_runs) == want.get("validations", 0), "in-fit validation runs per the interval rules"
    assert len(_cb(events, "on_validation_model_zero_grad")) == 0
    assert len(starts) == want.get("batch_starts", 0)
    assert len(skipped) == want.get("skipped", 0)
    assert trainer.global_step == want["steps"]
    assert len(zero) == want.get("zero_grads", 0)
    assert len(_cb(events, "on_train_epoch_start")) == want.get("epochs", 0) == len(_cb(events, "on_train_epoch_end"))
    assert trainer.current_epoch == want.get("epochs", 0)


def _expected_flags(e: TraceEvent, fn: str) -> tuple[str, bool | None]:
    """The stage a hook runs under and module.training there (None: either)."""
    hook, stage = e["hook"], e["ctx"]["stage"]
    if hook in ("on_sanity_check_start", "on_sanity_check_end"):
        return "sanity_check", True
    for noun, run_stage in (("validation", "validate"), ("test", "test"), ("predict", "predict")):
        if hook.startswith(f"on_{noun}_") or hook == f"{noun}_step":
            want = stage if noun == "validation" and stage == "sanity_check" else run_stage
            if hook.endswith("_model_eval") or hook.endswith("_model_zero_grad"):
                return want, True
            return want, False
    if hook in _TRANSFER or hook.endswith("_dataloader") or hook.endswith("_checkpoint") or hook.endswith("state_dict"):
        return stage, None  # under whatever loop requested it (checkpoints: wherever ModelCheckpoint saves)
    if hook.startswith("on_train") or hook in (
        "training_step",
        "optimizer_step",
        "on_before_zero_grad",
        "optimizer_zero_grad",
        "on_before_backward",
        "backward",
        "on_after_backward",
        "on_before_optimizer_step",
        "configure_gradient_clipping",
        "lr_scheduler_step",
    ):
        return "train", True
    return _STAGE_OF_FN[fn], None  # setup, teardown, configure_*, on_fit_*, checkpoint hooks


def check_flags(events: list[TraceEvent], fn: str) -> None:
    for e in events:
        ctx = e["ctx"]
        stage, training = _expected_flags(e, fn)
        where = f"{e['src']}:{e['hook']} {ctx}"
        assert ctx["fn"] == fn and ctx["stage"] == stage, where
        assert ctx["sanity"] == (stage == "sanity_check"), where
        assert ctx["trainer_training"] == (stage == "train"), where
        assert ctx["validating"] == (stage == "validate"), where
        assert ctx["testing"] == (stage == "test"), where
        assert ctx["predicting"] == (stage == "predict"), where
        if training is not None:
            assert ctx["training"] is training, where
        if e["hook"] in _TRANSFER:
            assert ctx["training"] is (stage == "train"), where


def check_eval_entry(run: Run, events: list[TraceEvent]) -> None:
    cfg = run.cfg
    noun = {"validate": "validation"}.get(cfg.entry, cfg.entry)
    limit = next(iter(cfg.trainer.values()), None)
    batches = min(cfg.batches[1], limit) if limit is not None else cfg.batches[1]
    assert len(_cb(events, f"on_{noun}_start")) == 1 == len(_cb(events, f"on_{noun}_end"))
    assert [e["args"]["batch_idx"] for e in _cb(events, f"on_{noun}_batch_end")] == list(range(batches))
    assert not _cb(events, "on_fit_start") and not _cb(events, "on_sanity_check_start")


# --------------------------------------------------------------------------- the properties


def _events(run: Run) -> list[TraceEvent]:
    return run.first.events


@given(cfg=configs())
def test_completed_runs_keep_the_structural_invariants(cfg: Config) -> None:
    run = make_run(cfg, checked=True).go()
    assert run.exception is None, repr(run.exception)
    trainer = run.trainer
    assert trainer.state.status is TrainerStatus.FINISHED and trainer.state.stage is None
    assert trainer.lifecycle_state == "idle"
    events = _events(run)
    skipped = run.model.skipped
    check_setup_first_teardown_last(events, cfg)
    check_nesting(events, skipped)
    check_flags(events, cfg.entry)
    if cfg.entry == "fit":
        check_batches(events, cfg, skipped)
        check_counts(run, events, skipped)
    else:
        check_eval_entry(run, events)
    verdict = verify_trace(events)
    assert verdict.ok, verdict.report()


@given(cfg=configs())
def test_checked_mode_agrees_with_the_table_and_changes_nothing(cfg: Config) -> None:
    checked = make_run(cfg, checked=True).go()
    assert checked.exception is None, repr(checked.exception)
    driver = checked.trainer._driver
    # every state a hook ran in was reached by a step proven against the machine first
    reached = {e["ctx"]["state"] for e in _events(checked)}
    proven_targets = {machine_answer(driver.table, path, event) for path, event in driver.checked_pairs}
    assert reached and reached <= proven_targets
    plain = make_run(cfg, checked=False).go()
    assert plain.trainer._driver.checked_pairs == frozenset()
    assert _events(plain) == _events(checked)
    assert plain.log == checked.log
