"""structlog setup: key=value lines on a terminal, JSON elsewhere; library logs routed through it."""

from __future__ import annotations

import logging
import sys

import structlog
import structlog.tracebacks


def configure(level: str = "info", *, json: bool | None = None) -> None:
    """Configure structlog and the standard library's logging once, for the whole process."""
    use_json = not sys.stderr.isatty() if json is None else json
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (structlog.processors.JSONRenderer() if use_json
                                           else structlog.dev.ConsoleRenderer(colors=False))
    if use_json:
        shared.append(structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=[
        structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # "skipped: maximum number of running instances reached" is the designed coalescing, not a problem.
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, root.level))
