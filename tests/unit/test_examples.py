"""Every example manifest is valid: our resources against the models, the rest well formed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canary.gitsync.config import SourcesFile
from canary.models.canary import Canary
from canary.models.resources import MetricTemplate
from canary.workloads.annotations import canary_for

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").rglob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_example_documents_are_valid(path: Path) -> None:
    if path.name == "git-sources.yaml":
        SourcesFile.model_validate(yaml.safe_load(path.read_text()))
        return
    for document in yaml.safe_load_all(path.read_text()):
        assert {"apiVersion", "kind", "metadata"} <= document.keys()
        if document["kind"] == "Canary":
            Canary.model_validate(document)
        elif document["kind"] == "MetricTemplate":
            MetricTemplate.model_validate(document)
        elif document["kind"] == "Deployment" and "canary.dev/enabled" in document["metadata"].get("annotations", {}):
            Canary.model_validate(canary_for({**document, "metadata": {**document["metadata"], "uid": "u"}}))
