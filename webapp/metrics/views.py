from __future__ import annotations

from ..auth import access
from ..db import reads_only
from ..domain.accounts import Role
from . import bp, collector


@bp.get("/metrics")
@access(Role.VIEWER, token_setting="METRICS_TOKEN")  # a viewer's API token, or the METRICS_TOKEN setting
@reads_only  # scraped: read in a deferred SQLite transaction
def metrics():
    body, content_type = collector.exposition()
    return body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"}
