"""The controller's User-Agent tells shards apart in the API server's audit log."""

from canary import __version__
from canary.kube.client import CLI_AGENT, controller_agent


def test_a_shard_names_itself_and_an_unsharded_controller_does_not() -> None:
    assert controller_agent(None) == f"canary-delivery/{__version__}"
    assert controller_agent("a") == f"canary-delivery/{__version__} shard/a"
    assert controller_agent("a") != controller_agent("b")
    assert not controller_agent("a").startswith(CLI_AGENT)
