"""Builders of the Kubernetes objects that tests create: one place, overridable per test."""

from __future__ import annotations

from typing import Any

from canary.kube import Obj


def make_deployment(
    name: str,
    namespace: str,
    *,
    replicas: int = 3,
    image: str = "ghcr.io/stefanprodan/podinfo:6.7.0",
    annotations: dict[str, str] | None = None,
) -> Obj:
    """A Deployment whose pods kwok will run on its fake nodes."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 9898}]}]},
            },
        },
    }


def make_configmap(name: str, namespace: str, *, data: dict[str, str] | None = None,
                   owner: Obj | None = None) -> Obj:
    """A ConfigMap, optionally owned (for garbage collection) by ``owner``."""
    metadata: Obj = {"name": name, "namespace": namespace}
    if owner is not None:
        metadata["ownerReferences"] = [{
            "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data or {}}


def make_canary(name: str, namespace: str, *, provider: str = "gatewayapi", analysis: Obj | None = None,
                **spec: Any) -> Obj:
    """A Canary for the Deployment ``name``, short intervals for tests; ``analysis`` replaces the default."""
    return {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": analysis or {"interval": "1s", "threshold": 2, "stepWeight": 10, "maxWeight": 50},
            **spec,
        },
    }
