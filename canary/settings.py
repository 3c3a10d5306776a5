"""The controller's settings: one model per concern, filled from flags and CANARY_* variables by the CLI."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canary.defaults import CONTROLLER_NAME, CONTROLLER_NAMESPACE
from canary.gitsync.config import GitSettings
from canary.workloads.deployments import DEFAULT_SELECTOR_LABELS


class DashboardSettings(BaseModel):
    """The dashboard on the controller's port (``--dashboard``): read-only unless ``actions``, and then only
    for holders of ``tokens`` (namespace/name of a Secret, or the folder where it is mounted)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = False
    actions: bool = False
    tokens: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DashboardSettings:
        if self.actions and not self.enabled:
            raise ValueError("--dashboard-actions needs --dashboard")
        if self.actions and not self.tokens:
            raise ValueError("--dashboard-actions needs --dashboard-tokens (namespace/name of a Secret whose keys "
                             "name who holds each token, or the folder where it is mounted)")
        if self.tokens and not self.actions:
            raise ValueError("--dashboard-tokens is only read with --dashboard-actions")
        return self


class ControllerSettings(BaseModel):
    """What ``canary controller`` runs with (Flagger's flags where they apply)."""

    model_config = ConfigDict(frozen=True)

    kubeconfig: Path | None = None
    metrics_server: str = "http://prometheus:9090"
    mesh_provider: str = "kubernetes"
    namespace: str | None = None
    selector_labels: tuple[str, ...] = DEFAULT_SELECTOR_LABELS
    include_label_prefix: tuple[str, ...] = ()
    enable_config_tracking: bool = True
    enable_leader_election: bool = False
    leader_election_namespace: str = CONTROLLER_NAMESPACE
    leader_election_id: str = CONTROLLER_NAME
    leader_election_lease_seconds: int = Field(default=15, ge=2)
    cluster_name: str = ""
    slack_url: str | None = Field(default=None, repr=False)
    event_webhook: str | None = Field(default=None, pattern=r"^https?://", repr=False)
    alert_provider: str | None = Field(default=None, pattern=r"^[a-z0-9-]+/[a-z0-9.-]+$")
    port: int = Field(default=8080, ge=0, le=65535)
    git_webhook_port: int | None = Field(default=None, ge=0, le=65535)
    stall_seconds: float = Field(default=300.0, gt=0)
    outbound_allow: tuple[str, ...] = ()
    outbound_deny: tuple[str, ...] = ()
    outbound_strict: bool = False
    no_cross_namespace_refs: bool = False
    listen_address: str = "0.0.0.0"  # noqa: S104 - all interfaces, as a pod's probes and scrapes need
    log_level: str = "info"
    workers: int = Field(default=32, ge=1)
    shard: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
    git: GitSettings = GitSettings()
    dashboard: DashboardSettings = DashboardSettings()
