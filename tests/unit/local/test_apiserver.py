from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from canary.errors import PermanentError
from canary.kube import Obj
from canary.local import apiserver, kwok
from canary.local.apiserver import ApiServerFlags, ApiServerPaths


def _paths(tmp_path: Path) -> ApiServerPaths:
    return ApiServerPaths(binary="/bin/kube-apiserver", etcd_url="http://127.0.0.1:2379", port=6443,
                          server_cert=tmp_path / "apiserver.crt", server_key=tmp_path / "apiserver.key",
                          ca_cert=tmp_path / "ca.crt", sa_pub=tmp_path / "sa.pub", sa_key=tmp_path / "sa.key",
                          cert_dir=tmp_path)


class TestParseExtraArgs:
    def test_name_value_pairs_keep_their_order_and_may_carry_dashes_equals_and_empty_values(self) -> None:
        parsed = apiserver.parse_extra_args(["max-requests-inflight=800", "--feature-gates=A=true,B=false", "v="])
        assert parsed == {"max-requests-inflight": "800", "feature-gates": "A=true,B=false", "v": ""}
        assert list(parsed) == ["max-requests-inflight", "feature-gates", "v"]

    @pytest.mark.parametrize("value", ["max-requests-inflight", "=800", "--=1", "---x=1", "two words=1"])
    def test_what_is_not_a_flag_and_a_value_is_refused_with_the_option_quoted(self, value: str) -> None:
        with pytest.raises(PermanentError, match=r"--apiserver-arg '.*'"):
            apiserver.parse_extra_args([value])

    def test_a_flag_given_twice_is_refused_rather_than_the_last_silently_winning(self) -> None:
        with pytest.raises(PermanentError, match=r"--apiserver-arg v is given twice \('1' and '2'\)"):
            apiserver.parse_extra_args(["v=1", "--v=2"])


class TestArgv:
    def test_the_service_range_is_a_slash_16_that_contains_the_old_slash_24(self, tmp_path: Path) -> None:
        argv = apiserver.argv(_paths(tmp_path), ApiServerFlags())
        assert "--service-cluster-ip-range=10.0.0.0/16" in argv
        wide, old = ipaddress.IPv4Network(apiserver.SERVICE_CIDR), ipaddress.IPv4Network("10.0.0.0/24")
        assert old.subnet_of(wide)
        assert wide.num_addresses - 2 >= 1000 * 3 * 2, "1000 canaries of each of two controllers, 3 Services each"
        assert apiserver.service_cidr_of(argv) == apiserver.SERVICE_CIDR

    def test_without_an_audit_log_no_audit_flag_is_set(self, tmp_path: Path) -> None:
        argv = apiserver.argv(_paths(tmp_path), ApiServerFlags())
        assert argv[0] == "/bin/kube-apiserver"
        assert not [a for a in argv if a.startswith("--audit")]

    def test_an_audit_log_gets_the_policy_and_is_never_rotated(self, tmp_path: Path) -> None:
        flags = ApiServerFlags(audit_log=tmp_path / "audit.log", audit_policy=tmp_path / "policy.yaml")
        names = apiserver.flag_names(apiserver.argv(_paths(tmp_path), flags)[1:])
        assert names["audit-log-path"] == str(tmp_path / "audit.log")
        assert names["audit-policy-file"] == str(tmp_path / "policy.yaml")
        assert int(names["audit-log-maxsize"]) >= 1_000_000, "megabytes: about a terabyte before a rotation"
        assert names["audit-log-maxbackup"] == "0", "0 keeps every rotated file"

    def test_an_audit_log_without_a_policy_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(PermanentError, match="audit policy"):
            apiserver.argv(_paths(tmp_path), ApiServerFlags(audit_log=tmp_path / "audit.log"))

    def test_extra_flags_come_last_with_their_values(self, tmp_path: Path) -> None:
        flags = ApiServerFlags(extra={"max-requests-inflight": "800", "feature-gates": "A=true"})
        argv = apiserver.argv(_paths(tmp_path), flags)
        assert argv[-2:] == ["--max-requests-inflight=800", "--feature-gates=A=true"]

    @pytest.mark.parametrize("name", ["secure-port", "service-cluster-ip-range", "etcd-servers", "authorization-mode"])
    def test_an_extra_flag_the_stack_sets_itself_is_refused_by_name(self, tmp_path: Path, name: str) -> None:
        with pytest.raises(PermanentError, match=rf"--apiserver-arg {name}: the local stack sets --{name} itself"):
            apiserver.argv(_paths(tmp_path), ApiServerFlags(extra={name: "x"}))

    def test_the_audit_flags_collide_only_when_there_is_an_audit_log(self) -> None:
        apiserver.check_extra({"audit-log-maxsize": "10"}, audit=False)
        with pytest.raises(PermanentError, match="--apiserver-arg audit-log-maxsize: the local stack sets"):
            apiserver.check_extra({"audit-log-maxsize": "10"}, audit=True)


def test_the_audit_policy_logs_metadata_of_every_request_once_it_completes(tmp_path: Path) -> None:
    policy = yaml.safe_load(apiserver.write_audit_policy(tmp_path / "sub" / "policy.yaml").read_text())
    assert policy["apiVersion"] == "audit.k8s.io/v1"
    assert policy["kind"] == "Policy"
    assert policy["omitStages"] == ["RequestReceived"]
    assert policy["rules"] == [{"level": "Metadata"}]


class _ServiceCidrs:
    """The ServiceCIDR calls widen_service_range makes."""

    def __init__(self, existing: dict[str, list[str]]) -> None:
        self.cidrs = existing
        self.applied: list[Obj] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        assert (api_version, kind) == ("networking.k8s.io/v1", "ServiceCIDR")
        return {"spec": {"cidrs": self.cidrs[name]}} if name in self.cidrs else None

    def apply(self, body: Obj, *, field_manager: str) -> Obj:
        self.applied.append(body)
        return body


class TestWidenServiceRange:
    def test_a_stack_started_with_the_slash_24_gets_a_second_servicecidr_with_the_slash_16(self) -> None:
        cluster = _ServiceCidrs({"kubernetes": ["10.0.0.0/24"]})
        assert apiserver.widen_service_range(cluster, started_with="10.0.0.0/24")
        assert cluster.applied == [{"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                                    "metadata": {"name": "canary-local"}, "spec": {"cidrs": ["10.0.0.0/16"]}}]

    def test_a_stack_widened_before_or_started_with_the_range_is_left_alone(self) -> None:
        widened = _ServiceCidrs({"kubernetes": ["10.0.0.0/24"], "canary-local": ["10.0.0.0/16"]})
        assert not apiserver.widen_service_range(widened, started_with="10.0.0.0/24")
        fresh = _ServiceCidrs({})
        assert not apiserver.widen_service_range(fresh, started_with="10.0.0.0/16")
        assert widened.applied == fresh.applied == []


def test_kwok_gives_pods_addresses_outside_the_service_range(tmp_path: Path) -> None:
    kwok.write_config(tmp_path / "kwok.yaml")
    config = next(yaml.safe_load_all((tmp_path / "kwok.yaml").read_text()))
    pods = ipaddress.ip_network(config["options"]["cidr"])
    assert not pods.overlaps(ipaddress.ip_network(apiserver.SERVICE_CIDR))
    assert pods.num_addresses > 20 * kwok.MAX_PODS
    assert kwok.node("n")["status"]["allocatable"]["pods"] == str(kwok.MAX_PODS)
