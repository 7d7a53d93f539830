"""The worker's periodic task for availability rules (registered in app/__init__.py)."""

from __future__ import annotations

from collections.abc import Callable

from app.gap.derivation import derive_due
from app.state import AppState


def derive_rule_slots(state: AppState) -> tuple[float, Callable[[], object]]:
    """Every GAP_POLL_SECONDS: derive the Schedules queued (a second of work at most, so
    that deliveries do not wait)."""
    return state.settings.gap_poll_seconds, lambda: derive_due(state, budget_seconds=1.0)
