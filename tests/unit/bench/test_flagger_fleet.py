from __future__ import annotations

from bench.flagger.fleet import flagger_fleet, our_fleet
from canary.models import flagger
from canary.models.canary import Canary
from canary.models.resources import MetricTemplate

PROMETHEUS = "http://127.0.0.1:9090"


def test_both_controllers_get_the_same_spec_in_their_own_kinds_and_namespaces() -> None:
    theirs, ours = flagger_fleet(3, PROMETHEUS), our_fleet(3, PROMETHEUS)
    assert theirs.namespace != ours.namespace
    assert theirs.canary("app-0001")["apiVersion"] == "flagger.app/v1beta1"
    converted = flagger.convert_document(theirs.canary("app-0001"), where="bench", mesh_provider="kubernetes")
    assert converted["spec"] == ours.canary("app-0001")["spec"]
    assert theirs.template()["spec"] == ours.template()["spec"]


def test_our_canaries_and_template_validate_as_blue_green_every_10s() -> None:
    fleet = our_fleet(2, PROMETHEUS)
    canary = Canary.model_validate({**fleet.canary("app-0000"), "metadata": {
        "name": "app-0000", "namespace": fleet.namespace}})
    assert canary.spec.analysis.iterations == 3
    assert canary.spec.analysis.interval == "10s"
    template = MetricTemplate.model_validate(fleet.template())
    assert template.spec.provider.address == PROMETHEUS
    assert fleet.names == ["app-0000", "app-0001"]


def test_shares_split_the_fleet_so_each_canary_is_in_exactly_one() -> None:
    fleet = our_fleet(5, PROMETHEUS)
    shares = [fleet.share(index, 2) for index in range(2)]
    assert shares[0].names == ["app-0000", "app-0002", "app-0004"]
    assert shares[1].names == ["app-0001", "app-0003"]
    assert [share.size for share in shares] == [3, 2]
    assert sorted(name for share in shares for name in share.names) == fleet.names
    assert shares[0].canary("app-0002")["spec"] == fleet.canary("app-0002")["spec"]
