"""The command line: fast without torch, one --version, ``python -m lightcycle`` = ``lightcycle``,
the same --lifecycle option everywhere, and a demo that shows all three uses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import lightcycle
from lightcycle.commands.main import main
from tests.paths import FIXTURES, ROOT

TRACE = FIXTURES / "lightcycle-fit-timed.jsonl"


def _python(code: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def test_help_diagram_and_verify_never_import_torch() -> None:
    # before: each of these imported torch through lightcycle/__init__ (about 3 s of a 3.5 s call)
    result = _python(
        f"""
        import contextlib, io, sys
        from lightcycle.commands.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--help"])
            except SystemExit:
                pass
            assert main(["diagram"]) == 0
            assert main(["diagram", "--state", "fit.train.epoch.batch", "--format", "dot"]) == 0
            assert main(["diagram", "--trace", {str(TRACE)!r}, "--over-lifecycle"]) == 0
            assert main(["verify", {str(TRACE)!r}]) == 0
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy"))
        assert not heavy, heavy[:5]
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_base_module_hook_table_matches_the_class() -> None:
    from lightcycle.core.module import LightningModule
    from lightcycle.core.module_hooks import BASE_MODULE_HOOKS
    from lightcycle.states import LIFECYCLE, Target

    declared = {h.name for t in LIFECYCLE.transitions for h in t.hooks if h.target is Target.MODULE}
    assert declared & set(dir(LightningModule)) == BASE_MODULE_HOOKS


def test_version_has_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert lightcycle.__version__ == metadata.version("lightcycle")
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"lightcycle {lightcycle.__version__}\n"


def test_lazy_package_attributes() -> None:
    assert lightcycle.Trainer.__name__ == "Trainer" and "Trainer" in dir(lightcycle)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = lightcycle.Nope  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["diagram", "--help"],
        ["verify", "--help"],
        ["demo", "--help"],
        ["--version"],
        ["diagram", "--state", "fit.sanity_check"],
        ["verify", str(TRACE)],
    ],
)
def test_python_m_lightcycle_is_the_lightcycle_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    module = subprocess.run([sys.executable, "-m", "lightcycle", *argv], capture_output=True, text=True, timeout=60)
    try:
        status = main(argv)
    except SystemExit as exited:
        status = int(exited.code or 0)
    out = capsys.readouterr().out
    assert module.returncode == status
    # argparse names the program "lightcycle" either way
    assert module.stdout == out


@pytest.mark.parametrize("command", [["diagram"], ["verify", str(TRACE)], ["demo", "--epochs", "1"]])
@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("nocolon", "expects MODULE:ATTR"),
        ("no_such_module_xyz:LIFECYCLE", "cannot import no_such_module_xyz"),
        ("examples.custom_event:NOPE", "has no attribute 'NOPE'"),
        ("lightcycle:__version__", "is a str, not a lightcycle Lifecycle"),
    ],
)
def test_bad_lifecycle_is_one_line_in_every_subcommand(
    command: list[str], spec: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--lifecycle", spec]) != 0
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_lifecycle_from_the_working_directory_as_the_installed_script_runs(tmp_path: Path) -> None:
    # the installed `lightcycle` script does not put the working directory on sys.path;
    # the README's `lightcycle diagram --lifecycle examples.custom_event:LIFECYCLE` failed with a traceback
    script = tmp_path / "lightcycle_script.py"
    # like the console script: the working directory is not on sys.path; both subcommands in one
    # process (examples.custom_event imports torch: one import, not two)
    script.write_text(
        "import json, sys\nfrom lightcycle.commands.main import main\n"
        "sys.exit(max(main(argv) for argv in json.loads(sys.argv[1])))\n"
    )
    spec = ["--lifecycle", "examples.custom_event:LIFECYCLE"]
    argvs = [["diagram", "--format", "dot", "--state", "fit.train.epoch.batch", *spec], ["verify", str(TRACE), *spec]]
    result = subprocess.run(
        [sys.executable, str(script), json.dumps(argvs)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on_ema_update" in result.stdout and f"OK {TRACE}" in result.stdout


def test_demo_shows_the_three_uses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--epochs", "1", "--samples", "256", "--no-progress-bar", "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"OK {out / 'trace.jsonl'}" in text  # verify's verdict, with counts
    assert "most called:" in text
    for name in ("trace.jsonl", "trace.mmd"):
        assert (out / name).stat().st_size > 0
    over = next(out.glob("trace.lifecycle.*"))
    assert "never reached" in over.read_text()
    assert f"lightcycle verify {out / 'trace.jsonl'}" in text
    assert f"lightcycle diagram --trace {out / 'trace.jsonl'} -o {out / 'trace.mmd'}" in text
    assert "--over-lifecycle" in text
    # the printed commands reproduce the files
    assert main(["diagram", "--trace", str(out / "trace.jsonl"), "-o", str(tmp_path / "again.mmd")]) == 0
    assert (tmp_path / "again.mmd").read_text() == (out / "trace.mmd").read_text()
    assert (
        'title: "trainer.fit(SpiralClassifier): ' in text
        or "trainer.fit(SpiralClassifier)" in (out / "trace.mmd").read_text()
    )
