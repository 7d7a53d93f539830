"""Running the service for real: health and readiness, request metrics and structured
logs, the SLA page, the OpenAPI description with its Swagger UI, the `user` and
`sas-selftest` commands, and the production start-up checks (app/ops/startup.py).

Kept light (imports inside `install`): app/ops/meters.py and app/ops/request_id.py are
leaves every layer may import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


def install(app: Flask, capability_statement: Callable[[], dict[str, Any]]) -> None:
    """Wire the operations in; call before the other app-wide hooks, so that a request's
    latency and id cover them."""
    from app.ops import docs, observe
    from app.ops.health import health
    from app.ops.sla import supervision
    from app.ops.users import user_group

    observe.install(app)
    app.register_blueprint(health)
    app.register_blueprint(supervision)
    docs.register(app, capability_statement)
    app.cli.add_command(user_group)
