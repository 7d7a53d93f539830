"""Read-only admin view of deliveries: what is pending, retrying or parked, and why."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.auth.admin_token import refusal, require_admin_token
from app.state import current_state
from app.subscriptions import outbox

admin = Blueprint("admin", __name__, url_prefix="/admin")
admin.before_request(require_admin_token)
STATUSES = ("pending", "delivering", "parked", "delivered", "superseded")


@admin.get("/outbox")
def outbox_view() -> Response:
    wanted = tuple(s for s in request.args.get("status", "pending,delivering,parked").split(",")
                   if s in STATUSES) or ("pending", "delivering", "parked")
    raw_limit = request.args.get("limit", "100")
    if not raw_limit.isdecimal():
        return refusal(400, "limit must be a positive integer")
    limit = min(int(raw_limit), 1000)
    with current_state().engine.connect() as conn:
        messages = outbox.listing(conn, wanted, limit)
        totals = outbox.counts(conn)
    for message in messages:
        for key in ("next_attempt_at", "created_at"):
            message[key] = message[key].isoformat() + "Z" if message[key] else None
        message["retrying"] = message["status"] == "pending" and message["attempts"] > 0
    return jsonify({"counts": totals, "messages": messages})
