from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from canary.errors import LocalStackError
from canary.local import prometheus


def test_config_scrapes_every_second_and_discovers_targets_from_files(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    prometheus.write_config(path, targets_dir=tmp_path / "targets", self_address="127.0.0.1:9999")

    config = yaml.safe_load(path.read_text())
    assert config["global"]["scrape_interval"] == "1s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:9999"]}]
    assert jobs["local"]["file_sd_configs"][0]["files"] == [str(tmp_path / "targets" / "*.json")]


def test_a_target_file_names_its_job_and_can_be_removed(tmp_path: Path) -> None:
    written = prometheus.add_target(tmp_path, job="sim", address="127.0.0.1:8080", labels={"stack": "a"})
    assert json.loads(written.read_text()) == [{"targets": ["127.0.0.1:8080"], "labels": {"stack": "a"}}]
    prometheus.remove_target(tmp_path, job="sim")
    assert list(tmp_path.iterdir()) == []


def test_a_job_name_cannot_escape_the_targets_folder(tmp_path: Path) -> None:
    with pytest.raises(LocalStackError, match=re.escape("job '../x'")):
        prometheus.add_target(tmp_path, job="../x", address="127.0.0.1:1")
