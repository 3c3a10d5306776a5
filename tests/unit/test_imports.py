"""The controller's import set stays lean: what a run may not need is imported when it is needed."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("scipy", "numpy", "hypothesis", "matplotlib")


def test_starting_the_cli_imports_no_heavy_optional_module() -> None:
    probe = ("import sys, canary.cli, canary.controller; "
             f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.split() == [], "scipy is for comparison metrics only, imported when one runs"
