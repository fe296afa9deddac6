"""Resolve every path of ``fixtures/lightning_public_paths.json`` through lightcycle's aliases; print JSON.

Run in a fresh process (the aliases cannot be installed where Lightning is already imported):
``{"resolved": [...], "refused": {path: message}, "other": {path: error}}``.
"""

from __future__ import annotations

import importlib
import json
import sys
import warnings
from pathlib import Path

from lightcycle.compat.aliases import install
from lightcycle.compat.not_offered import NotOfferedError


def main() -> None:
    warnings.simplefilter("ignore")
    data = json.loads((Path(__file__).parent / "fixtures" / "lightning_public_paths.json").read_text())
    install()
    out: dict[str, object] = {"resolved": [], "refused": {}, "other": {}}
    for module_name, names in data["modules"].items():
        try:
            module = importlib.import_module(module_name)
        except NotOfferedError as err:
            out["refused"][module_name] = str(err)  # type: ignore[index]
            continue
        except Exception as err:
            out["other"][module_name] = f"{type(err).__name__}: {err}"  # type: ignore[index]
            continue
        out["resolved"].append(module_name)  # type: ignore[attr-defined]
        for name in names:
            path = f"{module_name}.{name}"
            try:
                getattr(module, name)
            except NotOfferedError as err:
                out["refused"][path] = str(err)  # type: ignore[index]
            except Exception as err:
                out["other"][path] = f"{type(err).__name__}: {err}"  # type: ignore[index]
            else:
                out["resolved"].append(path)  # type: ignore[attr-defined]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
