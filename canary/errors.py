"""The exception tree of the controller application.

Callers decide what to do from the type alone, never from a message::

    CanaryError
    ├── PermanentError      bad input: report it (status condition, CLI message), do not retry
    │   ├── InvalidObject   the API server refused an object (400/422)
    │   └── Forbidden       the API server refused the caller (401/403): RBAC or credentials
    ├── TemporaryError      API or network trouble: retry with backoff
    │   └── Conflict        a write lost a race (409): re-read, recompute, retry
    └── LocalStackError     the local stack could not be built, started or stopped
        └── WaitTimeout     a condition was not met before its deadline (also a TimeoutError)

Messages name the object and the field, so that a person can act on them without a debugger.
"""


class CanaryError(Exception):
    """Base of every error this application raises on purpose."""


class PermanentError(CanaryError):
    """The input is wrong and retrying cannot help."""


class InvalidObject(PermanentError):
    """The API server refused an object as invalid; the message is the server's."""


class Forbidden(PermanentError):
    """The API server refused the request for who made it (401/403): a missing RBAC rule or bad credentials."""


class TemporaryError(CanaryError):
    """The world is not ready yet (API server, network); retrying may help."""


class Conflict(TemporaryError):
    """A write raced another writer (HTTP 409)."""


class LocalStackError(CanaryError):
    """The local stack (control plane, kwok, Prometheus) failed."""


class WaitTimeout(LocalStackError, TimeoutError):
    """A polled condition did not hold before its deadline."""
