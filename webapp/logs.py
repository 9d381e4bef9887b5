"""Logging, configured in one place: the format (``LOG_FORMAT``: plain lines, or ``json``), and the ids that
tie a click to its jobs. Every request gets an id (``X-Request-ID``: the client's if it is a sane token, else a
new one), returned in the response, stored in the meta of every job it enqueues and set again in the worker
while that job runs; every log record carries ``request_id`` (and, in a worker, ``job_id``)."""
from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from contextlib import contextmanager

from flask import Flask, g, request

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("plain", "json")

request_id: ContextVar[str | None] = ContextVar("cutover_request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("cutover_job_id", default=None)


# --- every record carries the ids, whichever handler formats it (pytest's caplog too) ------------------

_factory = logging.getLogRecordFactory()


def _record_with_ids(*args, **kwargs) -> logging.LogRecord:
    record = _factory(*args, **kwargs)
    record.request_id, record.job_id = request_id.get(), job_id.get()
    return record


if not getattr(_factory, "cutover_ids", False):  # once per process, however often this module is reloaded
    _record_with_ids.cutover_ids = True
    logging.setLogRecordFactory(_record_with_ids)


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class Formatter(JsonFormatter):
        def process_log_record(self, log_data):
            if log_data.get("job_id") is None:  # web lines: no job
                log_data.pop("job_id", None)
            return log_data

    return Formatter("%(levelname)s %(name)s %(message)s %(request_id)s %(job_id)s", timestamp="timestamp",
                     rename_fields={"levelname": "level", "name": "logger"})


def configure(log_format: str = "plain") -> None:
    """Give the root logger its one handler (stderr), formatted as ``log_format``; called by every
    ``create_app`` (web and workers alike), so calling it again replaces the handler it added before."""
    if log_format not in LOG_FORMATS:
        raise RuntimeError(f"LOG_FORMAT={log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "cutover", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.cutover = True
    handler.setFormatter(json_formatter() if log_format == "json" else logging.Formatter(PLAIN_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


# --- request ids -------------------------------------------------------------------------------------

def sane_request_id(value: str | None) -> str:
    """The client's id when it is a sane token (1..128 of ``[A-Za-z0-9._-]``), else a new uuid4 hex."""
    return value if value and SANE_REQUEST_ID.fullmatch(value) else uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id.get()


@contextmanager
def job_context(request: str | None, job: str | None):
    """Inside a worker: the ids of the job being run (and of the request that enqueued it) on every record."""
    tokens = request_id.set(request), job_id.set(job)
    try:
        yield
    finally:
        request_id.reset(tokens[0])
        job_id.reset(tokens[1])


def _begin_request() -> None:
    g.request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER))
    g.request_id_token = request_id.set(g.request_id)


def _send_request_id(response):
    if "request_id" in g:
        response.headers[REQUEST_ID_HEADER] = g.request_id
    return response


def _end_request(_exc=None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        try:
            request_id.reset(token)
        except ValueError:  # set in another context (an async view): nothing of ours to undo here
            request_id.set(None)


def init_app(app: Flask) -> None:
    """Before any other hook (the access guard's refusals carry the id too)."""
    app.before_request_funcs.setdefault(None, []).insert(0, _begin_request)
    app.after_request(_send_request_id)
    app.teardown_request(_end_request)
