"""What a metric provider is built from: a MetricTemplate's ``spec.provider``, its Secret decoded.

The controller fills a ``ProviderConfig`` from the template (or from the canary's
``metricsServer``) and its own settings (timeout, attempts), and hands it to
``registry.provider_for``. Each provider module then takes what it needs through the helpers
here, which name the missing field in their errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from analysis.errors import CredentialsError, ProviderSpecError


@dataclass(frozen=True)
class ProviderConfig:
    """Where a metric back end is and how to talk to it.

    ``credentials`` is the decoded data of the template's Secret (``token``, ``username`` and
    ``password``, ``apiKey``, ...); which keys count depends on ``type``. ``ca_bundle`` is PEM
    text of the CAs to trust instead of the system's; ``insecure_skip_verify`` turns
    verification off and wins over it. ``timeout`` bounds one request and ``attempts`` the
    requests per query. ``window`` is how many seconds back the back ends that take a time
    range as parameters (Datadog's ``from``/``to``, CloudWatch's ``StartTime``/``EndTime``) look;
    the controller sets it to ten times the metric's interval, as Flagger does. The other back
    ends read their look-back from the query itself (PromQL ranges, Graphite's ``from``,
    InfluxQL's ``WHERE time``, NRQL's ``SINCE``).
    """

    type: str = "prometheus"
    address: str | None = None
    # Headers and credentials may carry secrets, so they stay out of the repr (and so of logs).
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    region: str | None = None
    insecure_skip_verify: bool = False
    ca_bundle: str | None = field(default=None, repr=False)
    timeout: float = 5.0
    attempts: int = 2
    window: float = 300.0

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.window <= 0:
            raise ValueError(f"timeout and window must be positive, got {self.timeout} and {self.window}")
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")

    def __hash__(self) -> int:
        # The generated hash would fail on the mappings; hashing their items lets the controller
        # keep one provider per distinct config (a rotated Secret gives a new one).
        return hash((self.type, self.address, tuple(sorted(self.headers.items())),
                     tuple(sorted(self.credentials.items())), self.region, self.insecure_skip_verify,
                     self.ca_bundle, self.timeout, self.attempts, self.window))


def require_address(config: ProviderConfig, *, field: str) -> str:
    """The address, or an error saying that this type needs one."""
    if not config.address:
        raise ProviderSpecError(f"{field}.address: {config.type} needs an address")
    return config.address


def require_region(config: ProviderConfig, *, field: str) -> str:
    """The region, or an error saying that this type needs one."""
    if not config.region:
        raise ProviderSpecError(f"{field}.region: {config.type} needs a region")
    return config.region


def require_keys(config: ProviderConfig, *, field: str, choices: Sequence[Sequence[str]]) -> dict[str, str]:
    """The values of the first set of keys in ``choices`` that the Secret holds completely.

    The first choice is this project's spelling; later ones are accepted so that a Secret written
    for Flagger works unchanged. The error names the first and mentions the others.
    """
    for keys in choices:
        if all(config.credentials.get(key) for key in keys):
            return {key: config.credentials[key] for key in keys}
    first, *others = choices
    also = "".join(f" (or {_and(keys)})" for keys in others)
    raise CredentialsError(f"{field}.secretRef: {config.type} needs {_keys(first)}{also}")


def _keys(keys: Sequence[str]) -> str:
    return f"key {keys[0]}" if len(keys) == 1 else f"keys {_and(keys)}"


def _and(keys: Sequence[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{', '.join(keys[:-1])} and {keys[-1]}"


def present(credentials: Mapping[str, str]) -> str:
    """The keys a Secret holds, for error messages (never the values)."""
    return ", ".join(sorted(credentials)) or "none"
