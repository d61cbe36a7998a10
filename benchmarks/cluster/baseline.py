"""The story index as of ``BASELINE``, to time a change to the index against in the
same run.

Loaded from git into a temporary package, so the old code is not kept twice in the
tree and the comparison is with exactly what shipped. Move ``BASELINE`` to the last
commit before the change being measured.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = "db4217b"  # before the close rule (shared unknown names)
PACKAGE = "stories_baseline"


def baseline_index() -> type:
    """``StoryIndex`` from monitor/stories/ as of ``BASELINE``."""
    folder = Path(tempfile.mkdtemp(prefix="cluster-baseline-")) / PACKAGE
    folder.mkdir()
    (folder / "__init__.py").write_text("", encoding="utf-8")
    for name in ("index", "terms"):
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BASELINE}:monitor/stories/{name}.py"],
            capture_output=True, text=True, check=True).stdout
        source = source.replace("monitor.stories.terms", f"{PACKAGE}.terms")
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
    sys.path.insert(0, str(folder.parent))
    module = importlib.import_module(f"{PACKAGE}.index")
    index: type = module.StoryIndex
    return index
