"""How the platform's processes log: structlog and the standard library (uvicorn's
loggers included) through one handler on stderr, as readable console lines or as
JSON, one event per line.

Every event carries its time (ISO 8601, UTC), level and logger name, and the request
id while a request is being served (bound by the HTTP server with
``structlog.contextvars``). Events below ``level`` cost a method call: structlog's
filtering logger makes them no-ops.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LogSettings", "configure_logging"]

LogFormat = Literal["console", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]


class LogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: LogFormat = Field(
        default="console",
        description="'console' (readable lines) or 'json' (one JSON object a line, for "
        "a log shipper).",
    )
    level: LogLevel = Field(default="info", description="The least severe level written.")


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Send every log event of this process to ``stream`` (default stderr) in the
    settings' format, from ``settings.level`` up. Safe to call again: it replaces
    what an earlier call set up."""
    out = stream if stream is not None else sys.stderr
    level = logging.getLevelName(settings.level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if settings.format == "json":
        renderer = structlog.processors.JSONRenderer()
        # Tracebacks as data, without local variables: they may hold secrets.
        tracebacks = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        final: list[structlog.types.Processor] = [tracebacks, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_is_terminal(out))
        final = [renderer]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # uvicorn's loggers keep their own handlers unless told otherwise.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers = []
        named.propagate = True


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
