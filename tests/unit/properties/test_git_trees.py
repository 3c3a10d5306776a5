"""Any tree of files in a commit renders to objects or to one ``RenderError`` whose every problem
names its file, relative to the repository; nothing else escapes the render."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from canary.gitsync.render import RenderError, render
from tests.unit.properties.strategies import PROPERTIES

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"
DOCUMENTS = [
    CONFIGMAP,
    "kind: ConfigMap\nmetadata:\n  name: x\n",  # no apiVersion
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",  # no name
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 7\n",
    "- a\n- b\n", "just text\n", "42\n", "", "# only a comment\n", "~\n",
    "a: [1, 2\n", "a: b: c\n", "\ta: tab\n", "? [a]\n: b\n", "a: &x 1\nb: *y\n", "!!python/object:os.system x\n",
    "a: !!binary '=='\n", "a: !!float 'x'\n", "when: 2001-13-45\n", "when: 2024-02-30 10:00:00\n",
    "n: " + "9" * 5000 + "\n", "apiVersion: v1\nkind: 5\nmetadata:\n  name: x\n",
]
JSON = [json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}), "[1, 2]", "{", "null",
        '{"a": ' + "9" * 5000 + "}", "[" * 1100, '{"a": NaN}', '"\\ud800"']

yaml_files = st.lists(st.sampled_from(DOCUMENTS), min_size=1, max_size=3).map(
    lambda documents: "---\n".join(documents).encode())
files = st.one_of(yaml_files, yaml_files, st.sampled_from(JSON).map(str.encode), st.binary(max_size=16),
                  st.text(max_size=16).map(lambda text: text.encode("utf-8", "surrogatepass")))
paths = st.lists(st.sampled_from(["app", "app/base", "app/.hidden", "other"]), min_size=1, max_size=1).map(
    lambda folders: folders[0]).flatmap(lambda folder: st.builds(
        lambda stem, suffix: f"{folder}/{stem}{suffix}", st.sampled_from(["a", "b", "my app", "ü"]),
        st.sampled_from([".yaml", ".yml", ".json", ".txt", ""])))
trees = st.dictionaries(paths, files, max_size=5)
links = st.dictionaries(st.sampled_from(["app/link.yaml", "app/linked", "other/link.json"]),
                        st.sampled_from(["/etc/hostname", "/etc", "../../outside.yaml", "a.yaml", ".", "..", "gone"]),
                        max_size=2)
"""Symlinks (path -> target): out of the repository, into it, in a loop, dangling."""


def write(root: Path, tree: dict[str, bytes], symlinks: dict[str, str]) -> None:
    for relative, content in tree.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    for relative, target in symlinks.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)


@PROPERTIES
@given(trees, links, st.sampled_from([["app"], ["."], ["app", "other"], ["app/a.yaml"]]))
@example({"app/a.yaml": b"when: 2001-13-45\n"}, {}, ["app"])
@example({"app/a.yaml": b"n: " + b"9" * 5000 + b"\n"}, {}, ["app"])
@example({"app/a.json": b'{"a": ' + b"9" * 5000 + b"}"}, {}, ["app"])
@example({"app/a.json": b"[" * 1100}, {}, ["app"])
@example({"app/a.yaml": b"[" * 600}, {}, ["app"])
@example({"app/a.yaml": b"a: !!float 'x'\n"}, {}, ["app"])
@example({"app/kustomization.yaml": b"resources: [2001-13-45]\n"}, {}, ["app"])
def test_any_tree_renders_or_fails_naming_each_broken_file(tree: dict[str, bytes], symlinks: dict[str, str],
                                                           paths: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:  # not tmp_path: one fresh tree per example
        root = Path(folder)
        write(root, tree, symlinks)
        try:
            rendered = render(root, paths)
        except RenderError as exc:
            problems = exc.problems
        else:
            for found in rendered.objects:
                assert found.source.file in tree  # a link inside the repository renders as its target
                assert isinstance(found.body["metadata"]["name"], str)
            return
    assert problems
    for problem in problems:
        assert problem.split(":")[0].split(", document")[0] in {*tree, *symlinks, *paths}, problem
