from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest

from canary.errors import PermanentError
from canary.local import stack
from canary.local.procs import ProcessRecord
from canary.local.stack import RecordedOptions, StackOptions, StackState


def _state(tmp_path: Path, options: RecordedOptions) -> StackState:
    apiserver = ProcessRecord(name="kube-apiserver", pid=1, start_ticks=1, log="x",
                              argv=["kube-apiserver", "--service-cluster-ip-range=10.0.0.0/16"])
    return StackState(state_dir=str(tmp_path), kubeconfig=str(tmp_path / "kubeconfig"), external_cluster=False,
                      prometheus_url="http://127.0.0.1:9090", prometheus_targets=str(tmp_path / "targets"),
                      versions={}, started_at=dt.datetime.now(dt.UTC), ready=True, processes=[apiserver],
                      options=options)


class TestStackOptions:
    def test_options_for_the_control_plane_are_refused_with_an_existing_cluster(self, tmp_path: Path) -> None:
        with pytest.raises(PermanentError, match=r"--nodes, --audit-log configure the stack's own control plane"):
            StackOptions(state_dir=tmp_path, nodes=3, audit_log=tmp_path / "a.log",
                         external_kubeconfig=tmp_path / "kubeconfig")

    def test_an_apiserver_flag_the_stack_sets_is_refused_before_anything_starts(self, tmp_path: Path) -> None:
        with pytest.raises(PermanentError, match="--apiserver-arg audit-log-path: the local stack sets"):
            StackOptions(state_dir=tmp_path, audit_log=tmp_path / "a.log",
                         apiserver_args={"audit-log-path": "/elsewhere"})

    def test_fewer_than_one_node_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(PermanentError, match="--nodes must be at least 1, got 0"):
            StackOptions(state_dir=tmp_path, nodes=0)


class TestAnExistingStack:
    """``up`` resumes a stack as it was started; an option that would change it is refused, not ignored."""

    recorded = RecordedOptions(nodes=20, audit_log="/var/audit.log", apiserver_args={"v": "2"})

    def test_options_left_out_or_the_same_resume_it(self, tmp_path: Path) -> None:
        state = _state(tmp_path, self.recorded)
        stack._refuse_other_options(state, StackOptions(state_dir=tmp_path))
        stack._refuse_other_options(state, StackOptions(state_dir=tmp_path, nodes=20, audit_log=Path("/var/audit.log"),
                                                        apiserver_args={"v": "2"}))

    @pytest.mark.parametrize(("options", "recorded"), [
        ({"nodes": 3}, "--nodes 20"),
        ({"audit_log": Path("/var/other.log")}, "--audit-log /var/audit.log"),
        ({"apiserver_args": {"v": "4"}}, "--apiserver-arg v=2"),
        ({"simulator": False}, "the traffic simulator"),
    ])
    def test_another_value_is_refused_naming_what_the_stack_was_started_with(
        self, tmp_path: Path, options: dict[str, object], recorded: str
    ) -> None:
        with pytest.raises(PermanentError, match=rf"the stack in {tmp_path} was started with {re.escape(recorded)}, "
                           r"and `up` resumes it as it was; run `canary local down --purge"):
            stack._refuse_other_options(_state(tmp_path, self.recorded),
                                        StackOptions(state_dir=tmp_path, **options))  # type: ignore[arg-type]

    def test_an_audit_log_for_a_stack_started_without_one_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(PermanentError, match="was started with no --audit-log, no --apiserver-arg"):
            stack._refuse_other_options(_state(tmp_path, RecordedOptions()), StackOptions(
                state_dir=tmp_path, audit_log=tmp_path / "a.log", apiserver_args={"v": "2"}))

    def test_a_stack_started_without_the_simulator_resumes_without_it_unasked(self, tmp_path: Path) -> None:
        state = _state(tmp_path, RecordedOptions(nodes=20, simulator=False))
        stack._refuse_other_options(state, StackOptions(state_dir=tmp_path))
        stack._refuse_other_options(state, StackOptions(state_dir=tmp_path, simulator=False))

    def test_a_stack_recorded_before_options_were_is_read_with_none(self, tmp_path: Path) -> None:
        legacy = _state(tmp_path, RecordedOptions()).model_dump(mode="json")
        del legacy["options"]
        state = StackState.model_validate(legacy)
        assert state.options == RecordedOptions(nodes=None, audit_log=None, apiserver_args={})
        stack._refuse_other_options(state, StackOptions(state_dir=tmp_path, nodes=7))


def _up(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canary", "local", "up", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_cli_refuses_a_colliding_or_malformed_apiserver_arg_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    collision = _up("--state-dir", str(tmp_path), "--apiserver-arg", "secure-port=1")
    assert collision.returncode == 1
    assert collision.stderr.startswith("error: --apiserver-arg secure-port: the local stack sets --secure-port itself")
    malformed = _up("--state-dir", str(tmp_path), "--apiserver-arg", "v")
    assert malformed.returncode == 1
    assert malformed.stderr.strip() == ("error: --apiserver-arg 'v': expected NAME=VALUE, as in "
                                        "--apiserver-arg max-requests-inflight=800")
    assert not (tmp_path / "state.json").exists()
