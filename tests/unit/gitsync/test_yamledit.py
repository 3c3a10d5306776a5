from __future__ import annotations

import difflib

import pytest
import yaml

from canary.gitsync.yamledit import Change, EditError, Named, changes, edit_file, patch

LIVE = {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "web:2", "imagePullPolicy": "IfNotPresent",
                                 "env": [{"name": "MODE", "value": "new"}, {"name": "EXTRA", "value": "1"}]},
                                {"name": "proxy", "image": "proxy:1"}],
                 "dnsPolicy": "ClusterFirst"}}
PROMOTED = {"metadata": {"labels": {"app": "web"}, "annotations": {"team": "a"}},
            "spec": {"containers": [{"name": "proxy", "image": "proxy:1"},
                                    {"name": "web", "image": "web:1", "imagePullPolicy": "IfNotPresent",
                                     "env": [{"name": "MODE", "value": "old"}]}],
                     "dnsPolicy": "ClusterFirst"}}

FILE = """\
# the web app
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: "web:2"   # release
          env:
            - name: MODE
              value: new
            - name: EXTRA
              value: "1"
        - name: proxy
          image: proxy:1
---
apiVersion: v1
kind: Service
metadata:
  name: web
"""


def test_changes_are_deep_and_match_named_items_by_name_not_position() -> None:
    found = {str(c): c.value for c in changes(LIVE, PROMOTED)}
    assert found == {
        "set .spec.containers[name=web].image": "web:1",
        "set .spec.containers[name=web].env[name=MODE].value": "old",
        "remove .spec.containers[name=web].env[name=EXTRA]": None,
        "set .metadata.annotations": {"team": "a"},
    }
    assert changes(LIVE, LIVE) == []


def test_unnamed_lists_are_replaced_whole() -> None:
    assert changes({"args": ["a", "b"]}, {"args": ["a"]}) == [Change(("args",), ["a"])]


def test_an_edit_touches_only_the_changed_lines_and_keeps_comments_quotes_and_indentation() -> None:
    edits = [Change(("spec", "template", *c.path), c.value, c.remove) for c in changes(LIVE, PROMOTED)]
    edited = edit_file("k8s/web.yaml", FILE, lambda d: d.get("kind") == "Deployment",
                       lambda d: patch(d, edits, where="k8s/web.yaml"))
    before, after = FILE.splitlines(), edited.splitlines()
    assert after[0] == "# the web app"
    assert '          image: "web:1"   # release' in after
    assert "              value: old" in after
    assert "            - name: EXTRA" not in after
    assert "      annotations:" in after
    assert after[-4:] == before[-4:], "the other document is untouched"
    assert len(set(before) - set(after)) == 4, "image, MODE's value and EXTRA's two lines"


def test_json_files_are_edited_too() -> None:
    edited = edit_file("a.json", '{"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}}',
                       lambda d: True, lambda d: patch(d, [Change(("data", "x"), "2")], where="a.json"))
    assert '"x": "2"' in edited


def test_an_edit_that_cannot_apply_names_the_file_and_the_change() -> None:
    with pytest.raises(EditError, match=r"k8s/web.yaml, set .spec.containers\[name=gone\].image: no item named"):
        patch({"spec": {"containers": [{"name": "web"}]}}, [Change(("spec", "containers", Named("gone"), "image"),
                                                                   "x")], where="k8s/web.yaml")
    with pytest.raises(EditError, match="expected the object once in this file, found it 0 times"):
        edit_file("k8s/web.yaml", FILE, lambda d: d.get("kind") == "Secret", lambda d: None)


def test_a_file_written_by_pyyaml_keeps_its_folded_lines_and_its_other_documents_byte_for_byte() -> None:
    query = ('histogram_quantile(0.99, sum(rate(requests_bucket{namespace="{{ namespace }}", '
             'workload="{{ target }}"}[1m])) by (le))')
    template = {"apiVersion": "canary.dev/v1alpha1", "kind": "MetricTemplate", "metadata": {"name": "latency"},
                "spec": {"query": query}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "annotations": {"note": "a long annotation " * 8}},
              "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}}
    text = "# two documents\n" + yaml.safe_dump_all([template, deploy], sort_keys=False)
    assert len(text.splitlines()) > 14, "PyYAML folded the long lines"

    edited = edit_file("k8s/web.yaml", text, lambda d: d.get("kind") == "Deployment",
                       lambda d: patch(d, [Change(("spec", "template", "spec", "containers", Named("web"), "image"),
                                                  "web:1")], where="k8s/web.yaml"))

    changed = [line for line in difflib.unified_diff(text.splitlines(), edited.splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-        image: web:2", "+        image: web:1"]
    assert list(yaml.safe_load_all(edited))[1]["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"
