"""kwok's side of the local stack: its configuration and the fake nodes it manages.

kwok creates no nodes; we create them, annotated so kwok takes them over, and kwok keeps their
leases and status fresh and makes the pods bound to them run and become ready.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

NODE_ANNOTATION = "kwok.x-k8s.io/node"
MAX_PODS = 110
"""Pods per node, a kubelet's default: 1000 canaries of one replica each (a primary; two controllers
side by side make 2000 pods) need ``--nodes 20`` or more."""
POD_CIDR = "10.244.0.0/16"
"""Where kwok takes pod IPs from (kind's pod subnet). Its default, 10.0.0.1/24, lies inside the Service
range and its pool hands out addresses past the /24's end once 254 pods run."""


def node(name: str) -> dict[str, Any]:
    """A Node object for kwok to manage, with room for plenty of pods."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": str(MAX_PODS)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: "fake"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/agent": ""},
        },
        "status": {"allocatable": resources, "capacity": resources},
    }


UNREADY_ANNOTATION = "sim.canary.dev/unready"
_NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_NOT_STARTED = {"key": ".status.podIP", "operator": "DoesNotExist"}
_UNREADY = f'.metadata.annotations["{UNREADY_ANNOTATION}"]'

# Pod status templates (kwok renders them with Go templates). A pod is "started" once it has an IP.
_STARTED_POD = """
{{ $now := Now }}
conditions:
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "%(ready)s", lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "%(ready)s", lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: %(ready_bool)s
  restartCount: 0
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
%(pod_ip)s
phase: Running
startTime: {{ $now | Quote }}
"""


_POD_IP = ('podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) '
           '( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}')


def _pod_stage(name: str, selector: list[dict[str, str]], next_step: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name},
            "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"}, "selector": {"matchExpressions": selector},
                     "next": next_step}}


def pod_stages() -> list[dict[str, Any]]:
    """How kwok moves pods along: ready, never ready (annotated), deleted.

    Giving any pod stage replaces all of kwok's own, so the three are disjoint and complete for
    what runs here (no Jobs). Pods annotated ``sim.canary.dev/unready`` run but never become
    ready, which is how tests make a release miss its progress deadline.
    """
    ready = {"ready": "True", "ready_bool": "true", "pod_ip": _POD_IP}
    unready = {"ready": "False", "ready_bool": "false", "pod_ip": _POD_IP}
    return [
        _pod_stage("pod-ready", [_NOT_DELETED, _NOT_STARTED, {"key": _UNREADY, "operator": "DoesNotExist"}],
                   {"statusTemplate": _STARTED_POD % ready}),
        _pod_stage("pod-unready", [_NOT_DELETED, _NOT_STARTED, {"key": _UNREADY, "operator": "Exists"}],
                   {"statusTemplate": _STARTED_POD % unready}),
        _pod_stage("pod-delete", [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
                   {"finalizers": {"empty": True}, "delete": True}),
    ]


def write_config(path: Path) -> None:
    """Write kwok's configuration and pod stages (so it never reads the user's ~/.kwok/kwok.yaml)."""
    config = {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokConfiguration",
              "options": {"cidr": POD_CIDR}}
    path.write_text(yaml.safe_dump_all([config, *pod_stages()], sort_keys=False))


def argv(*, binary: str, kubeconfig: Path, config: Path) -> list[str]:
    """The command line of kwok managing every node annotated as fake."""
    return [
        binary,
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake",
        "--node-lease-duration-seconds=40",
        "--server-address=",
    ]
