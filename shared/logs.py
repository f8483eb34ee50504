"""Structured JSON logs that carry the correlation id of the request or event being handled."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

import orjson

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
service_var: ContextVar[str | None] = ContextVar("service", default=None)

_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        corr = correlation_id_var.get()
        if corr:
            doc["correlation_id"] = corr
        svc = service_var.get()
        if svc:
            doc["service"] = svc
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    root = logging.getLogger()
    if getattr(root, "_sangkien_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level)
    root._sangkien_configured = True  # type: ignore[attr-defined]
