"""Diagrams generated from the lifecycle declaration; nothing here is drawn by hand.

- :mod:`.views`: which states and transitions a diagram shows (one view per entry point,
  ``fit``/``validate``/``test``/``predict``, and the ``interrupt`` overview).
- :mod:`.mermaid`: Mermaid ``stateDiagram-v2`` text (:func:`.mermaid.mermaid`).
- :mod:`.dot`: Graphviz DOT text (:func:`.dot.dot`), and SVG/PNG rendered by ``dot``.
- :mod:`.sequence`: Mermaid ``sequenceDiagram`` of a recorded run (HookRecorder trace).
- :mod:`.files`: the committed ``diagrams/`` folder (write, staleness check).
- :mod:`.labels`: the notation shared by every format (``cb.``/``lm.``/``dm.`` prefixes).
- :mod:`.outline`: the entry points as pseudocode, every hook at its place
  (:func:`.outline.outline`; committed as ``docs/lifecycle.md``).

Regenerate the committed folder with ``lightcycle diagram --entry all --format all -o
diagrams/`` (:data:`REGENERATE`). The README's fit lifecycle is :func:`readme_mermaid`
(the same text as ``diagrams/fit.mmd``). The outline is rewritten with
``lightcycle diagram --format outline -o docs/lifecycle.md`` (:data:`REGENERATE_OUTLINE`).

The package namespace re-exports only names that do not shadow its submodules (the
functions ``dot.dot``, ``mermaid.mermaid`` and ``views.views`` stay in their modules).
"""

from lightcycle.diagrams.dot import GraphvizNotFoundError
from lightcycle.diagrams.files import FORMATS, REGENERATE, readme_mermaid, render_text, stale_files, write_views
from lightcycle.diagrams.outline import OUTLINE_FILE, REGENERATE_OUTLINE
from lightcycle.diagrams.sequence import read_trace, sequence_diagram
from lightcycle.diagrams.views import INTERRUPT_VIEW, View, build, view_named

__all__ = [
    "FORMATS",
    "INTERRUPT_VIEW",
    "OUTLINE_FILE",
    "REGENERATE",
    "REGENERATE_OUTLINE",
    "GraphvizNotFoundError",
    "View",
    "build",
    "read_trace",
    "readme_mermaid",
    "render_text",
    "sequence_diagram",
    "stale_files",
    "view_named",
    "write_views",
]
