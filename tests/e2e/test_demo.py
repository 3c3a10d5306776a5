"""``canary demo`` end to end, on the session's stack: what a new user sees after ``make demo``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from canary.local import stack

pytestmark = pytest.mark.usefixtures("canary_crds")


def test_the_demo_promotes_the_good_commit_and_rolls_back_and_reverts_the_bad_one(
    local_stack: stack.StackState, tmp_path: Path,
) -> None:
    done = subprocess.run([sys.executable, "-m", "canary", "demo", "--state-dir", local_stack.state_dir,
                           "--reports", str(tmp_path)],
                          capture_output=True, text=True, check=False, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "promoted" in out
    assert "rolled back" in out
    assert "request-success-rate" in out, "the summary says why the bad release failed"
    assert "Revert podinfo to its promoted revision" in out, "the revert commit is shown"
    diff = [line.strip() for line in out.splitlines() if line.strip()[:1] in "+-"]
    assert diff == ["-        sim.canary.dev/error-rate: '30'", "+        sim.canary.dev/error-rate: '0'",
                    "-        image: ghcr.io/stefanprodan/podinfo:6.7.2",
                    "+        image: ghcr.io/stefanprodan/podinfo:6.7.1"], "only the lines that differ"
    assert "the cluster and Git agree" in out
    reports = re.findall(r"^report of the (good|bad) release: (\S+\.png)$", out, re.MULTILINE)
    assert reports == [("good", str(tmp_path / "good-release.png")), ("bad", str(tmp_path / "bad-release.png"))], \
        "the demo says where its reports are"
    for _, path in reports:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is a PNG picture"
