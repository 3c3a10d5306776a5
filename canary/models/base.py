"""What every model of a Kubernetes object shares: camelCase on the wire, and Go durations.

``parse_duration`` is the one duration grammar of the project: CRD fields, annotations, flags
and settings files all take Go durations ("90s", "5m", "1h30m"); flags and settings also take a
bare number of seconds (``Seconds``), as Flagger's and Flux's flags do.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "canary.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Model(BaseModel):
    """A part of a resource: camelCase aliases, unknown fields refused, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class OpenModel(Model):
    """A part whose schema we only partly type (mesh-specific blocks); unknown fields are kept."""

    model_config = ConfigDict(extra="allow")


def parse_duration(text: str) -> timedelta:
    """Parse a Go duration such as ``1m30s`` or ``500ms``."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 1m or 1m30s")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def _checked_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, Field(pattern=DURATION_PATTERN), AfterValidator(_checked_duration)]


def seconds_of(value: str | float) -> float:
    """A flag's or setting's duration in seconds: a Go duration, or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration such as 30s, 1m or 1m30s")
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        return parse_duration(text).total_seconds()


Seconds = Annotated[float, BeforeValidator(seconds_of)]
"""A duration in settings (seconds): ``90s``, ``5m``, ``1h30m`` or a bare number of seconds."""


def _checked_url(text: str, *, schemes: frozenset[str] | None) -> str:
    # The value may be a credential (a Slack webhook URL is one), so errors never repeat it.
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if not parts.scheme or not parts.netloc:
        raise ValueError("not a URL: a scheme and a host are required, as in https://host/path")
    if schemes is not None and parts.scheme not in schemes:
        raise ValueError(f"the URL's scheme must be one of {', '.join(sorted(schemes))}")
    return text


def _url_rule(schemes: frozenset[str] | None) -> dict[str, list[dict[str, str]]]:
    rule = "isURL(self)"
    message = "must be a URL"
    if schemes is not None:
        rule += f" && url(self).getScheme() in {sorted(schemes)!r}".replace("'", '"')
        message += f" with scheme {' or '.join(sorted(schemes))}"
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


_HTTP = frozenset({"http", "https"})
MAX_URL_LENGTH = 2048
"""Bounds what the API server's CEL cost estimate charges for a URL check."""
HttpURL = Annotated[str, Field(max_length=MAX_URL_LENGTH, json_schema_extra=_url_rule(_HTTP)),
                    AfterValidator(lambda text: _checked_url(text, schemes=_HTTP))]
"""An http or https URL, checked by the API server (CEL ``isURL``) and by the model alike."""
ProxyURL = Annotated[str, Field(max_length=MAX_URL_LENGTH, json_schema_extra=_url_rule(None)),
                     AfterValidator(lambda text: _checked_url(text, schemes=None))]
"""A proxy URL of any scheme requests can use (http, https, socks5)."""
