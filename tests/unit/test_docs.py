"""The docs' code blocks stay true: README.md, docs/*.md and examples/*/README.md.

Every YAML block parses, and its documents of our kinds (and Flagger's, converted) validate against our models;
every ``canary`` command parses with the real CLI (``--help`` appended, so nothing runs but an unknown command
or option still fails); every ``make`` target is in the Makefile; every repository path a command names exists;
and every shell block of an example's README is marked for tests/e2e/test_examples.py, which runs them.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from canary import cli
from canary.models import flagger
from canary.models.canary import Canary
from canary.models.resources import AlertProvider, MetricTemplate
from canary.workloads.annotations import canary_for
from tests.docblocks import (
    MARKERS,
    REPO,
    Block,
    blocks,
    canary_arguments,
    docs,
    has_placeholder,
    logical_lines,
    optional_variants,
    simple_commands,
)

BLOCKS = [block for path in docs() for block in blocks(path)]
SHELL = [b for b in BLOCKS if b.lang in ("sh", "bash", "shell")]
MODELS: dict[str, type[BaseModel]] = {"Canary": Canary, "MetricTemplate": MetricTemplate,
                                      "AlertProvider": AlertProvider}
# Words of a command that name something in the repository (canary/podinfo is kubectl's Canary podinfo).
REPO_PATH = re.compile(r"^(?:\./)?(?:(?:examples|manifests|charts|docs|tools|tests|bench)/[^\s$*?<>]*"
                       r"|(?:canary|analysis)/[^\s$*?<>]*\.py)$")


def _ids(block: Block) -> str:
    return block.where


def _commands(block: Block) -> list[tuple[str, list[str]]]:
    """(line, words) of every simple command of a shell block whose line has no placeholder, optional groups
    expanded."""
    found = []
    for line in logical_lines(block.text):
        if has_placeholder(line):
            continue
        for variant in optional_variants(line):
            found += [(variant, words) for words in simple_commands(variant)]
    return found


def test_the_docs_have_code_blocks_to_check() -> None:
    assert any(b.lang == "yaml" for b in BLOCKS)
    assert any(canary_arguments(words) is not None for block in SHELL for _, words in _commands(block))


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in ("yaml", "yml")], ids=_ids)
def test_yaml_blocks_parse_and_our_kinds_validate(block: Block) -> None:
    try:
        documents = [d for d in yaml.safe_load_all(block.text) if d is not None]
    except yaml.YAMLError as exc:
        pytest.fail(f"{block.where}: not YAML: {exc}")
    for found in documents:
        if not isinstance(found, dict) or "kind" not in found or "apiVersion" not in found:
            continue  # a fragment: parsing is all there is to check
        document = flagger.convert_document(found, where=block.where) if flagger.is_flagger(found) else found
        kind, version = document["kind"], document["apiVersion"]
        if version == "canary.dev/v1alpha1":
            assert kind in MODELS, f"{block.where}: no kind {kind} in canary.dev/v1alpha1"
            MODELS[kind].model_validate(document)
        annotations = (document.get("metadata") or {}).get("annotations") or {}
        if kind == "Deployment" and "canary.dev/enabled" in annotations:
            meta = {"namespace": "default", **document["metadata"], "uid": "u"}
            Canary.model_validate(canary_for({**document, "metadata": meta}))


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "json"], ids=_ids)
def test_json_blocks_parse(block: Block) -> None:
    json.loads(block.text)


@pytest.mark.parametrize("block", SHELL, ids=_ids)
def test_canary_commands_parse_with_the_real_cli(block: Block) -> None:
    runner = CliRunner()
    for line, words in _commands(block):
        arguments = canary_arguments(words)
        if arguments is None:
            continue
        result = runner.invoke(cli.app, [*arguments, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, f"{block.where}: `{line}` does not parse:\n{result.output}"


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return {target for match in re.finditer(r"^([\w./%-]+(?:[ \t]+[\w./%-]+)*)[ \t]*:(?!=)", text, re.MULTILINE)
            for target in match[1].split()}


@pytest.mark.parametrize("block", SHELL, ids=_ids)
def test_make_targets_are_in_the_makefile(block: Block) -> None:
    targets = _make_targets()
    for line, words in _commands(block):
        if words[0] != "make":
            continue
        named = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        missing = [w for w in named if w not in targets]
        assert not missing, f"{block.where}: `{line}`: no Makefile target {', '.join(missing)}"


@pytest.mark.parametrize("block", SHELL, ids=_ids)
def test_repository_paths_in_commands_exist(block: Block) -> None:
    for line, words in _commands(block):
        for word in words:
            path = word.rpartition("=")[2]
            if REPO_PATH.match(path):
                assert (REPO / path).exists(), f"{block.where}: `{line}`: {path} is not in the repository"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.marker], ids=_ids)
def test_test_markers_are_known_and_on_shell_blocks(block: Block) -> None:
    assert block.marker in MARKERS, f"{block.where}: unknown marker test: {block.marker}; known: {MARKERS}"
    assert block.lang in ("sh", "bash"), f"{block.where}: marked blocks are run by bash; this one is {block.lang}"


@pytest.mark.parametrize("readme", sorted((REPO / "examples").glob("*/README.md")),
                         ids=lambda p: p.parent.name)
def test_every_shell_block_of_an_example_is_marked_and_one_runs(readme: object) -> None:
    assert isinstance(readme, type(REPO))
    found = [b for b in blocks(readme) if b.lang in ("sh", "bash", "shell")]
    unmarked = [b.where for b in found if not b.marker]
    assert not unmarked, f"shell blocks without <!-- test: {'|'.join(MARKERS)} --> before them: {unmarked}"
    assert any(b.marker == "run" for b in found), f"{readme}: no block marked <!-- test: run -->"
    controllers = [line for b in found if b.marker == "setup" for line in logical_lines(b.text)
                   if any((canary_arguments(words) or [""])[0] == "controller" for words in simple_commands(line))]
    assert controllers, f"{readme}: no setup block starts `canary controller`, which the test replaces"
