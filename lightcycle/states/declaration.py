"""The lifecycle, declared once.

This module *is* lightcycle's training lifecycle: every state, every event, and for each
transition the hooks it fires, in Lightning 2.6's order (``shared/spec/hook-order.md``).
The runtime (:mod:`lightcycle.engine`, :mod:`lightcycle.runtime`, :mod:`lightcycle.trainer`),
the diagrams, ``lightcycle verify`` and the tests all read :data:`LIFECYCLE`; no hook order is written anywhere else.
Read it as pseudocode, every hook at its place: ``docs/lifecycle.md`` (generated from this
file by ``lightcycle diagram --format outline -o docs/lifecycle.md``; a test keeps it current).

Reading guide. ``cb_lm("x")`` means every callback's ``x`` then the module's ``x``;
``lm``/``cb``/``dm`` one side only. A transition's hooks fire after the lifecycle has moved
to its destination, so they run under the destination's stage. States ending in
``ended``/``done`` exist so that ``*_end`` hooks still see their own stage.

Fit, in one breath: ``fit`` (configure_callbacks) → ``setup`` → ``configure_optimizers``
→ ``fit_start`` → [sanity check: ``sanity_check_start`` → ``val_dataloader`` → one
validation run → ``sanity_check_end``] → ``train_dataloader`` → ``train_start`` → per
epoch: ``train_epoch_start`` → per batch (transfer → ``train_batch_start`` →
``optimizer_step`` wrapping ``training_step``, ``zero_grad``, ``backward``,
``before_optimizer_step`` → ``train_batch_end`` → validation when due) →
``train_epoch_end`` → ``train_end`` → ``fit_end`` → ``teardown`` → ``finish``.
"""

from __future__ import annotations

from lightcycle.states.model import (
    ANY,
    Action,
    Event,
    Hook,
    Lifecycle,
    Result,
    Stage,
    State,
    Target,
    Transition,
    cb,
    cb_lm,
    dm,
    lm,
)
from lightcycle.states.model import EvalEvents as EvalEvents
from lightcycle.states.model import EvalHooks as EvalHooks  # re-exported: the loops type their records with it
from lightcycle.states.stages import RunningStage

# --------------------------------------------------------------------------- vocabulary

_TRANSFER_HOOKS = (
    Hook("on_before_batch_transfer", Target.BATCH_HOOK, ("batch", "dataloader_idx"), result=Result.PIPE),
    Hook("transfer_batch_to_device", Target.BATCH_HOOK, ("batch", "device", "dataloader_idx"), result=Result.PIPE),
    Hook("on_after_batch_transfer", Target.BATCH_HOOK, ("batch", "dataloader_idx"), result=Result.PIPE),
)
"""The batch-transfer triple; each hook's result is the batch the next one gets."""


def _loader(name: str) -> Hook:
    """A dataloader hook (``train_dataloader``): the datamodule's when attached, else the module's."""
    return Hook(name, Target.DATA_SOURCE, only_if_overridden=True, result=Result.RETURN)


def _prepare_data_hooks() -> tuple[Hook, ...]:
    return dm("prepare_data", only_if_overridden=True), lm("prepare_data", only_if_overridden=True)


def _setup_hooks() -> tuple[Hook, ...]:
    return (
        dm("setup", kwargs=("stage",)),
        cb("setup", kwargs=("stage",)),
        lm("setup", kwargs=("stage",)),
        lm("configure_sharded_model", only_if_overridden=True),
        lm("configure_model", only_if_overridden=True),
    )


def _prepare_data(fn: str) -> Transition:
    """``prepare_data`` as its own event: Lightning joins the process group before it and, since
    only local rank 0 runs it, every rank waits for it before the ``setup`` hooks."""
    return Transition(
        PREPARE_DATA,
        (f"{fn}.configuring",),
        f"{fn}.prepared",
        _prepare_data_hooks(),
        before=(Action.SETUP_ENVIRONMENT,),
        after=(Action.PREPARE_DATA_BARRIER,),
    )


def _prepared() -> State:
    return State("prepared", doc="prepare_data done (local rank 0 of each node); every rank waited for it")


def _teardown_hooks() -> tuple[Hook, ...]:
    return dm("teardown", kwargs=("stage",)), cb("teardown", kwargs=("stage",)), lm("teardown", kwargs=("stage",))


# --------------------------------------------------------------------------- triggers

_TRANSFER = ("batch", "device", "dataloader_idx")
_EVAL_BATCH = ("batch", "batch_idx", "dataloader_idx")  # dataloader_idx only with several dataloaders

ENTRY = {
    fn: Event(fn, doc=f"`trainer.{fn}()` begins: the module may add callbacks")
    for fn in ("fit", "validate", "test", "predict")
}
PREPARE_DATA = Event("prepare_data", (), "local rank 0 of each node prepares the data; every rank waits for it")
SETUP = Event("setup", ("stage",), "setup, datamodule → callbacks → module")
LOAD_CHECKPOINT = Event("load_checkpoint", ("checkpoint",), "a checkpoint is being restored: the module sees it first")
LOAD_DATAMODULE_STATE = Event("load_datamodule_state", ("state_dict",), "the datamodule's stored state is restored")
LOAD_CALLBACK_STATES = Event(
    "load_callback_states", ("checkpoint", "states"), "callbacks see the checkpoint, then get their states"
)
COLLECT_STATE = Event("collect_state", (), "a checkpoint is being written: every callback's state_dict")
COLLECT_DATAMODULE_STATE = Event(
    "collect_datamodule_state", (), "a checkpoint is being written: the datamodule's state_dict"
)
SAVE_CHECKPOINT = Event(
    "save_checkpoint", ("checkpoint",), "the assembled checkpoint dict may be edited, callbacks then module"
)
SAVE_WEIGHTS = Event("save_weights", ("checkpoint",), "a weights-only checkpoint: only the module may edit it")
CONFIGURE_OPTIMIZERS = Event("configure_optimizers", (), "fit only: the module builds its optimizers")
FIT_START = Event("fit_start", (), "optimizers exist; fit begins")
SANITY_CHECK_START = Event("sanity_check_start", (), "a short validation run checks the val loop")
SANITY_CHECK_END = Event("sanity_check_end", (), "the sanity check is over; its metrics are discarded")
TRAIN_DATALOADER = Event("train_dataloader", (), "the train dataloader is requested (lazily, as Lightning)")
VAL_DATALOADER = Event("val_dataloader", (), "the val dataloaders are requested")
TEST_DATALOADER = Event("test_dataloader", (), "the test dataloaders are requested")
PREDICT_DATALOADER = Event("predict_dataloader", (), "the predict dataloaders are requested")
TRAIN_START = Event("train_start", (), "training begins (after the sanity check)")
TRAIN_EPOCH_START = Event("train_epoch_start", (), "a training epoch begins")
VALIDATION_EXIT = Event(
    "validation_exit",
    (),
    "in-fit validation is over (or had no batches after zero_grad/loading); training resumes (stage train)",
)
RESUME_EPOCH = Event("resume_epoch", (), "an epoch restored mid-way continues without on_train_epoch_start")
TRAIN_BATCH_TRANSFER = Event("train_batch_transfer", _TRANSFER, "the next batch moves to the device")
TRAIN_BATCH_START = Event("train_batch_start", ("batch", "batch_idx"), "a training batch begins")
SKIP_REST_OF_EPOCH = Event("skip_rest_of_epoch", (), "the module's on_train_batch_start returned -1")
OPTIMIZER_STEP = Event(
    "optimizer_step",
    ("epoch", "batch_idx", "optimizer", "optimizer_closure"),
    "a micro-batch that completes a window: the module's optimizer_step runs the closure",
)
TRAINING_STEP = Event(
    "training_step",
    ("batch", "batch_idx"),
    "the forward pass; inside optimizer_step it may run again (closure optimizers such as LBFGS)",
)
ZERO_GRAD = Event("zero_grad", ("epoch", "batch_idx", "optimizer"), "first micro-batch of an accumulation window")
BACKWARD = Event("backward", ("loss",), "backward on the (accumulation-scaled) loss")
BEFORE_OPTIMIZER_STEP = Event(
    "before_optimizer_step", ("optimizer", "gradient_clip_val", "gradient_clip_algorithm"), "inside the closure"
)
OPTIMIZER_STEP_END = Event("optimizer_step_end", (), "the module's optimizer_step returned")
MANUAL_TRAINING_STEP = Event("manual_training_step", ("batch", "batch_idx"), "training_step, manual optimization")
MANUAL_OPTIMIZER_STEP = Event("manual_optimizer_step", ("optimizer",), "opt.step() in manual optimization")
LR_SCHEDULER_STEP = Event("lr_scheduler_step", ("scheduler", "metric"), "a scheduler whose interval is due steps")
TRAIN_BATCH_END = Event("train_batch_end", ("outputs", "batch", "batch_idx"), "a training batch ended")
TRAIN_EPOCH_END = Event("train_epoch_end", (), "a training epoch ended (after its validation, if due)")
TRAIN_END = Event("train_end", (), "training ended")
FIT_END = Event("fit_end", (), "fit ended (after the internal teardown)")
TEARDOWN = Event("teardown", ("stage",), "a successful run ends: datamodule → callbacks → module")
FINISH = Event("finish", (), "the run is over; back to idle")
INTERRUPT = Event("interrupt", ("exception",), "any BaseException inside a run")


VALIDATION_MODEL_ZERO_GRAD = Event("validation_model_zero_grad", (), "in-fit validation only, not mid-accumulation")

# The evaluation loops' names, one column per loop (validation, test, predict), every one
# written out so that grep finds it here.
_EVAL_EVENT_NAMES = {
    "start": ("validation_start", "test_start", "predict_start"),
    "epoch_start": ("validation_epoch_start", "test_epoch_start", "predict_epoch_start"),
    "batch_transfer": ("validation_batch_transfer", "test_batch_transfer", "predict_batch_transfer"),
    "batch_start": ("validation_batch_start", "test_batch_start", "predict_batch_start"),
    "step": ("validation_step", "test_step", "predict_step"),
    "batch_end": ("validation_batch_end", "test_batch_end", "predict_batch_end"),
    "epoch_end": ("validation_epoch_end", "test_epoch_end", "predict_epoch_end"),
    "end": ("validation_end", "test_end", "predict_end"),
}
_EVAL_HOOK_NAMES = {
    "model_eval": ("on_validation_model_eval", "on_test_model_eval", "on_predict_model_eval"),
    "start": ("on_validation_start", "on_test_start", "on_predict_start"),
    "epoch_start": ("on_validation_epoch_start", "on_test_epoch_start", "on_predict_epoch_start"),
    "batch_start": ("on_validation_batch_start", "on_test_batch_start", "on_predict_batch_start"),
    "step": ("validation_step", "test_step", "predict_step"),
    "batch_end": ("on_validation_batch_end", "on_test_batch_end", "on_predict_batch_end"),
    "epoch_end": ("on_validation_epoch_end", "on_test_epoch_end", "on_predict_epoch_end"),
    "end": ("on_validation_end", "on_test_end", "on_predict_end"),
}
_EVAL_MODEL_TRAIN = ("on_validation_model_train", "on_test_model_train", None)  # Lightning has no predict one
_EVAL_MODEL_ZERO_GRAD = ("on_validation_model_zero_grad", None, None)  # in fit only


def _eval_loop(column: int, noun: str, entry: str, kind: str, stage: RunningStage, loader: Event) -> EvalEvents:
    """One evaluation loop's record, from its column of the name tables."""
    event = {field: names[column] for field, names in _EVAL_EVENT_NAMES.items()}
    hook = {field: names[column] for field, names in _EVAL_HOOK_NAMES.items()}
    return EvalEvents(
        noun=noun,
        entry=entry,
        kind=kind,
        stage=stage,
        loader=loader,
        hooks=EvalHooks(
            model_eval=hook["model_eval"],
            model_train=_EVAL_MODEL_TRAIN[column],
            start=hook["start"],
            epoch_start=hook["epoch_start"],
            batch_start=hook["batch_start"],
            step=hook["step"],
            batch_end=hook["batch_end"],
            epoch_end=hook["epoch_end"],
            end=hook["end"],
            model_zero_grad=_EVAL_MODEL_ZERO_GRAD[column],
        ),
        start=Event(event["start"]),
        epoch_start=Event(event["epoch_start"]),
        batch_transfer=Event(event["batch_transfer"], _TRANSFER),
        batch_start=Event(event["batch_start"], _EVAL_BATCH, optional_tail=True),
        step=Event(event["step"], _EVAL_BATCH, optional_tail=True),
        batch_end=Event(event["batch_end"], ("outputs", *_EVAL_BATCH), optional_tail=True),
        epoch_end=Event(event["epoch_end"]),
        end=Event(event["end"]),
        model_zero_grad=VALIDATION_MODEL_ZERO_GRAD if _EVAL_MODEL_ZERO_GRAD[column] else None,
    )


VALIDATION = _eval_loop(0, "validation", "validate", "val", RunningStage.VALIDATING, VAL_DATALOADER)
TEST = _eval_loop(1, "test", "test", "test", RunningStage.TESTING, TEST_DATALOADER)
PREDICT = _eval_loop(2, "predict", "predict", "predict", RunningStage.PREDICTING, PREDICT_DATALOADER)

EVAL = {e.noun: e for e in (VALIDATION, TEST, PREDICT)}
"""The evaluation loops by noun."""
EVAL_NOUNS = tuple(EVAL)
EVAL_OF_ENTRY = {e.entry: e for e in EVAL.values()}
"""The evaluation loops by entry point (``validate``, ``test``, ``predict``)."""
EVAL_OF_KIND = {e.kind: e for e in EVAL.values()}
"""The evaluation loops by loader kind (``val``, ``test``, ``predict``)."""

# --------------------------------------------------------------------------- evaluation


def _evaluation_states(noun: str, zero_grad: bool = False) -> State:
    zeroed: tuple[State, ...] = ()
    if zero_grad:
        zeroed = (
            State("zeroed", doc="gradients cleared before an in-fit validation"),
            State("loaded", doc="val dataloaders requested lazily"),
        )
    return State(
        noun,
        doc=f"one {noun} run over its dataloaders in sequence",
        children=(
            *zeroed,
            State("started", doc=f"model in eval mode, on_{noun}_start fired"),
            State("running", doc="between batches"),
            State(
                "batch",
                children=(
                    State("transferred", doc="batch on the device"),
                    State("started", doc=f"on_{noun}_batch_start fired"),
                    State("stepped", doc=f"{noun}_step returned"),
                ),
            ),
            State("epoch_done", doc=f"on_{noun}_epoch_end fired"),
            State("ended", doc=f"on_{noun}_end fired; train flags restored"),
        ),
    )


def _evaluation(noun: str, at: str, entry: tuple[str, ...], zero_grad: bool = False) -> tuple[Transition, ...]:
    """The transitions of one evaluation run nested at state path ``at``.

    Args:
        noun: validation, test or predict.
        at: the path of the evaluation state (e.g. ``fit.train.epoch.validation``).
        entry: the leaf states the run may begin from.
        zero_grad: whether ``on_validation_model_zero_grad`` may come first (in fit).
    """
    t = EVAL[noun]
    h = t.hooks
    p = at + "."
    train_hook: tuple[Hook, ...] = ()
    after: tuple[Action, ...] = (Action.RESTORE_TRAIN_MODE,)
    if h.model_train is not None:
        train_hook = (lm(h.model_train, only_if_overridden=True, otherwise=Action.RESTORE_TRAIN_MODE),)
        after = ()
    zero: tuple[Transition, ...] = ()
    starts = entry
    if zero_grad:
        assert t.model_zero_grad is not None and h.model_zero_grad is not None, f"{noun} never runs in fit"
        zero = (Transition(t.model_zero_grad, entry[:1], p + "zeroed", (lm(h.model_zero_grad),)),)
        starts = entry + (p + "zeroed",)
    return zero + (
        Transition(
            t.start,
            starts,
            p + "started",
            (lm(h.model_eval), *cb_lm(h.start)),
            before=(Action.CAPTURE_TRAIN_MODE,),
        ),
        Transition(t.epoch_start, (p + "started",), p + "running", cb_lm(h.epoch_start)),
        Transition(t.batch_transfer, (p + "running",), p + "batch.transferred", _TRANSFER_HOOKS),
        Transition(t.batch_start, (p + "batch.transferred",), p + "batch.started", cb_lm(h.batch_start, *_EVAL_BATCH)),
        Transition(
            t.step,
            (p + "batch.started",),
            p + "batch.stepped",
            (lm(h.step, *_EVAL_BATCH, result=Result.RETURN, trim_args=True),),
            before=(Action.AUTOCAST,),
        ),
        Transition(t.batch_end, (p + "batch.stepped",), p + "running", cb_lm(h.batch_end, "outputs", *_EVAL_BATCH)),
        Transition(t.epoch_end, (p + "running",), p + "epoch_done", cb_lm(h.epoch_end)),
        Transition(t.end, (p + "epoch_done",), p + "ended", (*cb_lm(h.end), *train_hook), after=after),
    )


# --------------------------------------------------------------------------- fit

_TRAIN_BATCH = State(
    "batch",
    doc="one training batch: transfer, start, the step (closure or accumulation or manual), end",
    children=(
        State("transferred", doc="batch on the device"),
        State("started", doc="on_train_batch_start fired"),
        State("forwarded", doc="training_step returned (accumulating micro-batch)"),
        State("zeroed", doc="gradients zeroed (first micro-batch of a window)"),
        State("backwarded", doc="backward done (accumulating micro-batch)"),
        State(
            "closure",
            doc="inside the module's optimizer_step: the closure runs the step",
            children=(
                State("entered", doc="optimizer_step entered"),
                State("forwarded", doc="training_step returned"),
                State("zeroed", doc="gradients zeroed"),
                State("backwarded", doc="backward done"),
                State("clipped", doc="on_before_optimizer_step and clipping done"),
            ),
        ),
        State("stepped", doc="optimizer_step returned; global_step advanced"),
        State("manual", doc="training_step running under manual optimization"),
    ),
)

_FIT = State(
    "fit",
    stage="train",
    doc="trainer.fit(): setup, sanity check, epochs, teardown",
    children=(
        State("configuring", doc="configure_callbacks returned"),
        _prepared(),
        State("setup", doc="prepare_data/setup/configure_model done; a checkpoint may be restored here"),
        State("configured", doc="optimizers built"),
        State("started", doc="on_fit_start fired"),
        State(
            "sanity_check",
            stage="sanity_check",
            doc="a short validation run before training (num_sanity_val_steps)",
            children=(
                State("started", doc="on_sanity_check_start fired"),
                State("loaded", doc="val dataloaders requested"),
                _evaluation_states("validation"),
                State("ended", doc="on_sanity_check_end fired"),
            ),
        ),
        State(
            "train",
            doc="the fit loop: epochs until max_epochs, max_steps or should_stop",
            children=(
                State("loaded", doc="train dataloader requested"),
                State("val_loaded", stage="validate", doc="val dataloaders requested early (no sanity check)"),
                State("started", doc="on_train_start fired"),
                State(
                    "epoch",
                    doc="one training epoch: batches, validation when due",
                    children=(
                        State("running", doc="between batches"),
                        _TRAIN_BATCH,
                        State("cut", doc="the module's on_train_batch_start returned -1: the epoch ends here"),
                        State(
                            "validation",
                            stage="validate",
                            children=_evaluation_states("validation", zero_grad=True).children,
                        ),
                    ),
                ),
                State("epoch_done", doc="on_train_epoch_end fired"),
                State("ended", doc="on_train_end fired"),
            ),
        ),
        State("ended", doc="on_fit_end fired"),
        State("torn_down", doc="teardown fired"),
    ),
)

_CONFIGURE_CALLBACKS_HOOKS = (lm("configure_callbacks", result=Result.RETURN),)
"""An entry point begins: the module may return callbacks to add."""
_TRAINING_STEP_HOOKS = (lm("training_step", "batch", "batch_idx", result=Result.RETURN, trim_args=True),)
"""The forward pass: in the closure, on an accumulating micro-batch, under manual optimization."""
_ZERO_GRAD_HOOKS = (
    *cb_lm("on_before_zero_grad", "optimizer"),
    lm("optimizer_zero_grad", "epoch", "batch_idx", "optimizer"),
)
"""The first micro-batch of an accumulation window, in the closure or not."""
_BACKWARD_HOOKS = (*cb_lm("on_before_backward", "loss"), lm("backward", "loss"), *cb_lm("on_after_backward"))
"""The backward triple: in the closure, on an accumulating micro-batch, at ``manual_backward``."""
_BEFORE_OPTIMIZER_STEP_HOOKS = cb_lm("on_before_optimizer_step", "optimizer")
"""Gradients are final: in the closure (then clipping), and at a manual ``opt.step()``."""

_B = "fit.train.epoch.batch."
_C = _B + "closure."

_FIT_TRANSITIONS: tuple[Transition, ...] = (
    Transition(ENTRY["fit"], ("idle",), "fit.configuring", _CONFIGURE_CALLBACKS_HOOKS),
    _prepare_data("fit"),
    Transition(SETUP, ("fit.prepared",), "fit.setup", _setup_hooks()),
    Transition(
        CONFIGURE_OPTIMIZERS,
        ("fit.setup",),
        "fit.configured",
        (lm("configure_optimizers", result=Result.RETURN),),
        before=(Action.STRATEGY_SETUP,),  # Lightning's strategy.setup wraps, then calls configure_optimizers
    ),
    Transition(FIT_START, ("fit.configured",), "fit.started", cb_lm("on_fit_start")),
    # sanity check
    Transition(SANITY_CHECK_START, ("fit.started",), "fit.sanity_check.started", (cb("on_sanity_check_start"),)),
    Transition(VAL_DATALOADER, ("fit.sanity_check.started",), "fit.sanity_check.loaded", (_loader("val_dataloader"),)),
    *_evaluation("validation", "fit.sanity_check.validation", ("fit.sanity_check.loaded",)),
    Transition(
        SANITY_CHECK_END,
        ("fit.sanity_check.validation.ended", "fit.sanity_check.loaded"),
        "fit.sanity_check.ended",
        (cb("on_sanity_check_end"),),
    ),
    # training
    Transition(
        TRAIN_DATALOADER, ("fit.started", "fit.sanity_check.ended"), "fit.train.loaded", (_loader("train_dataloader"),)
    ),
    Transition(VAL_DATALOADER, ("fit.train.loaded",), "fit.train.val_loaded", (_loader("val_dataloader"),)),
    Transition(TRAIN_START, ("fit.train.loaded", "fit.train.val_loaded"), "fit.train.started", cb_lm("on_train_start")),
    Transition(
        TRAIN_EPOCH_START,
        ("fit.train.started", "fit.train.epoch_done"),
        "fit.train.epoch.running",
        cb_lm("on_train_epoch_start"),
    ),
    Transition(RESUME_EPOCH, ("fit.train.started",), "fit.train.epoch.running"),
    # reload_dataloaders_every_n_epochs: the train dataloader is requested again before the epoch starts
    Transition(TRAIN_DATALOADER, ("fit.train.epoch_done",), None, (_loader("train_dataloader"),)),
    Transition(TRAIN_BATCH_TRANSFER, ("fit.train.epoch.running",), _B + "transferred", _TRANSFER_HOOKS),
    Transition(
        TRAIN_BATCH_START,
        (_B + "transferred",),
        _B + "started",
        (
            cb("on_train_batch_start", "batch", "batch_idx"),
            lm("on_train_batch_start", "batch", "batch_idx", result=Result.RETURN),
        ),
    ),
    Transition(SKIP_REST_OF_EPOCH, (_B + "started",), "fit.train.epoch.cut"),
    # automatic optimization, a micro-batch that steps: optimizer_step wraps the closure
    Transition(
        OPTIMIZER_STEP,
        (_B + "started",),
        _C + "entered",
        (lm("optimizer_step", "epoch", "batch_idx", "optimizer", "optimizer_closure"),),
    ),
    Transition(
        TRAINING_STEP,
        (_C + "entered", _C + "clipped"),
        _C + "forwarded",
        _TRAINING_STEP_HOOKS,
        before=(Action.AUTOCAST,),
    ),
    Transition(
        ZERO_GRAD,
        (_C + "forwarded",),
        _C + "zeroed",
        _ZERO_GRAD_HOOKS,
    ),
    Transition(
        BACKWARD,
        (_C + "forwarded", _C + "zeroed"),
        _C + "backwarded",
        _BACKWARD_HOOKS,
        before=(Action.SCALE_LOSS,),
    ),
    Transition(
        BEFORE_OPTIMIZER_STEP,
        (_C + "forwarded", _C + "zeroed", _C + "backwarded"),
        _C + "clipped",
        (
            *_BEFORE_OPTIMIZER_STEP_HOOKS,
            lm("configure_gradient_clipping", "optimizer", kwargs=("gradient_clip_val", "gradient_clip_algorithm")),
        ),
        before=(Action.UNSCALE_GRADIENTS,),
        after=(Action.SCALER_STEP,),
    ),
    Transition(OPTIMIZER_STEP_END, (_C + "clipped",), _B + "stepped"),
    # automatic optimization, an accumulating micro-batch: no optimizer_step
    Transition(
        TRAINING_STEP,
        (_B + "started",),
        _B + "forwarded",
        _TRAINING_STEP_HOOKS,
        before=(Action.AUTOCAST,),
    ),
    Transition(
        ZERO_GRAD,
        (_B + "forwarded",),
        _B + "zeroed",
        _ZERO_GRAD_HOOKS,
    ),
    Transition(
        BACKWARD,
        (_B + "forwarded", _B + "zeroed"),
        _B + "backwarded",
        _BACKWARD_HOOKS,
        before=(Action.SCALE_LOSS,),
    ),
    # manual optimization: the user's training_step calls manual_backward and opt.step()
    Transition(
        MANUAL_TRAINING_STEP,
        (_B + "started",),
        _B + "manual",
        _TRAINING_STEP_HOOKS,
        before=(Action.AUTOCAST,),
    ),
    Transition(
        BACKWARD,
        (_B + "manual",),
        None,
        _BACKWARD_HOOKS,
        before=(Action.SCALE_LOSS,),
    ),
    Transition(
        MANUAL_OPTIMIZER_STEP,
        (_B + "manual",),
        None,
        _BEFORE_OPTIMIZER_STEP_HOOKS,
        before=(Action.UNSCALE_GRADIENTS,),
        after=(Action.SCALER_STEP,),
    ),
    # schedulers: step interval after a step; epoch interval on the last batch, or after epoch end (plateau)
    Transition(
        LR_SCHEDULER_STEP,
        (_B + "stepped", "fit.train.epoch.cut", "fit.train.epoch.running", "fit.train.epoch_done"),
        None,
        (lm("lr_scheduler_step", "scheduler", "metric"),),
    ),
    Transition(
        TRAIN_BATCH_END,
        (_B + "stepped", _B + "forwarded", _B + "zeroed", _B + "backwarded", _B + "manual"),
        "fit.train.epoch.running",
        cb_lm("on_train_batch_end", "outputs", "batch", "batch_idx"),
    ),
    # in-fit validation; its dataloaders are requested lazily when no earlier run loaded them
    Transition(
        VAL_DATALOADER,
        ("fit.train.epoch.running", "fit.train.epoch.validation.zeroed"),
        "fit.train.epoch.validation.loaded",
        (_loader("val_dataloader"),),
    ),
    *_evaluation(
        "validation",
        "fit.train.epoch.validation",
        ("fit.train.epoch.running", "fit.train.epoch.validation.loaded"),
        zero_grad=True,
    ),
    Transition(
        VALIDATION_EXIT,
        ("fit.train.epoch.validation.ended", "fit.train.epoch.validation.zeroed", "fit.train.epoch.validation.loaded"),
        "fit.train.epoch.running",
    ),
    Transition(
        TRAIN_EPOCH_END,
        ("fit.train.epoch.running", "fit.train.epoch.cut"),
        "fit.train.epoch_done",
        (
            Hook("on_train_epoch_end", Target.PLAIN_CALLBACKS),
            lm("on_train_epoch_end"),
            Hook("on_train_epoch_end", Target.MONITORING_CALLBACKS),
        ),
    ),
    Transition(TRAIN_END, ("fit.train.started", "fit.train.epoch_done"), "fit.train.ended", cb_lm("on_train_end")),
    Transition(
        FIT_END,
        ("fit.started", "fit.sanity_check.ended", "fit.train.loaded", "fit.train.val_loaded", "fit.train.ended"),
        "fit.ended",
        cb_lm("on_fit_end"),
        before=(Action.STRATEGY_TEARDOWN,),  # Lightning's _teardown runs before on_fit_end
    ),
    Transition(TEARDOWN, ("fit.ended",), "fit.torn_down", _teardown_hooks()),
)

# --------------------------------------------------------------------------- validate / test / predict


def _eval_entry(fn: str) -> tuple[State, tuple[Transition, ...]]:
    e = EVAL_OF_ENTRY[fn]
    noun = e.noun
    state = State(
        fn,
        stage=fn,
        doc=f"trainer.{fn}(): setup, one {noun} run, teardown",
        children=(
            State("configuring", doc="configure_callbacks returned"),
            _prepared(),
            State("setup", doc="prepare_data/setup/configure_model done; a checkpoint may be restored here"),
            State("loaded", doc="dataloaders requested"),
            _evaluation_states(noun),
            State("torn_down", doc="teardown fired"),
        ),
    )
    transitions = (
        Transition(ENTRY[fn], ("idle",), f"{fn}.configuring", _CONFIGURE_CALLBACKS_HOOKS),
        _prepare_data(fn),
        Transition(SETUP, (f"{fn}.prepared",), f"{fn}.setup", _setup_hooks(), after=(Action.STRATEGY_SETUP,)),
        Transition(e.loader, (f"{fn}.setup",), f"{fn}.loaded", (_loader(e.loader.name),)),
        *_evaluation(noun, f"{fn}.{noun}", (f"{fn}.loaded",)),
        Transition(
            TEARDOWN,
            (f"{fn}.setup", f"{fn}.loaded", f"{fn}.{noun}.ended"),
            f"{fn}.torn_down",
            _teardown_hooks(),
            before=(Action.STRATEGY_TEARDOWN,),
        ),
    )
    return state, transitions


_VALIDATE, _VALIDATE_T = _eval_entry("validate")
_TEST, _TEST_T = _eval_entry("test")
_PREDICT, _PREDICT_T = _eval_entry("predict")

# --------------------------------------------------------------------------- anywhere in a run

_SETUP_STATES = ("fit.setup", "validate.setup", "test.setup", "predict.setup")

_CHECKPOINTS: tuple[Transition, ...] = (
    # restore (spec 3.14): module first, then datamodule state, then callbacks
    Transition(LOAD_CHECKPOINT, _SETUP_STATES, None, (lm("on_load_checkpoint", "checkpoint"),)),
    Transition(LOAD_DATAMODULE_STATE, _SETUP_STATES, None, (dm("load_state_dict", "state_dict"),)),
    Transition(
        LOAD_CALLBACK_STATES,
        _SETUP_STATES,
        None,
        (
            cb("on_load_checkpoint", "checkpoint"),
            Hook("load_state_dict", Target.CALLBACKS, ("states",), per_state_key=True),
        ),
    ),
    # save (spec 3.16): allowed wherever a callback or the user may save, idle included
    Transition(COLLECT_STATE, ("idle", ANY), None, (Hook("state_dict", Target.CALLBACKS, result=Result.COLLECT),)),
    Transition(COLLECT_DATAMODULE_STATE, ("idle", ANY), None, (dm("state_dict", result=Result.RETURN),)),
    Transition(
        SAVE_CHECKPOINT,
        ("idle", ANY),
        None,
        (cb("on_save_checkpoint", "checkpoint"), lm("on_save_checkpoint", "checkpoint")),
    ),
    Transition(SAVE_WEIGHTS, ("idle", ANY), None, (lm("on_save_checkpoint", "checkpoint"),)),
)

_ENDINGS: tuple[Transition, ...] = (
    Transition(
        FINISH,
        ("fit.torn_down", "validate.torn_down", "test.torn_down", "predict.torn_down", "interrupted"),
        "idle",
    ),
    # spec 4.1 with our deviation 2: every handler runs, failures become notes
    Transition(
        INTERRUPT,
        (ANY,),
        "interrupted",
        (cb("on_exception", "exception", isolated=True), dm("on_exception", "exception", isolated=True)),
    ),
)

LIFECYCLE = Lifecycle(
    states=(
        State("idle", stage=None, doc="no run in progress"),
        _FIT,
        _VALIDATE,
        _TEST,
        _PREDICT,
        State("interrupted", stage=Stage.KEEP, doc="on_exception fired; the run is being torn down"),
    ),
    transitions=_FIT_TRANSITIONS + _VALIDATE_T + _TEST_T + _PREDICT_T + _CHECKPOINTS + _ENDINGS,
    initial="idle",
)
"""lightcycle's lifecycle: the single source of the hook order."""
