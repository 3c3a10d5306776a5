"""Prometheus for the local stack: its configuration and the targets it scrapes.

Debian's ``prometheus`` runs as a plain process with a generated config and a data folder in
the stack's state folder. Targets are file-based service discovery: adding one is writing a
small JSON file that Prometheus picks up within a second, with no restart or reload.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from canary.errors import LocalStackError

SCRAPE_INTERVAL = "1s"
_JOB_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")


def executable() -> str:
    """The path of the ``prometheus`` binary, or an error that says how to get it."""
    path = shutil.which("prometheus")
    if path is None:
        raise LocalStackError("prometheus is not on PATH; install Debian's package: apt-get install prometheus")
    return path


def write_config(path: Path, *, targets_dir: Path, self_address: str) -> None:
    """Write a config that scrapes Prometheus itself and every file in ``targets_dir``."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL,
                   "scrape_timeout": SCRAPE_INTERVAL},
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [self_address]}]},
            {
                "job_name": "local",
                "file_sd_configs": [{"files": [str(targets_dir / "*.json")], "refresh_interval": "1s"}],
                # A target's file names its job; keep that instead of the scrape config's name.
                "relabel_configs": [{"source_labels": ["__meta_filepath"], "regex": r".*/([^/]+)\.json",
                                     "target_label": "job", "replacement": "$1"}],
            },
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def argv(*, binary: str, config: Path, data_dir: Path, address: str) -> list[str]:
    """The command line of a local Prometheus."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={address}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]


def add_target(targets_dir: Path, *, job: str, address: str, labels: dict[str, str] | None = None) -> Path:
    """Have Prometheus scrape ``address`` (host:port) as job ``job``; returns the file written."""
    if not _JOB_NAME.match(job):
        raise LocalStackError(f"scrape target job {job!r} must match {_JOB_NAME.pattern}")
    path = targets_dir / f"{job}.json"
    partial = path.with_suffix(".tmp")
    # Written aside and renamed, so Prometheus never reads half a file.
    partial.write_text(json.dumps([{"targets": [address], "labels": labels or {}}]))
    partial.rename(path)
    return path


def remove_target(targets_dir: Path, *, job: str) -> None:
    """Stop scraping the target that ``add_target`` registered as ``job``."""
    (targets_dir / f"{job}.json").unlink(missing_ok=True)
