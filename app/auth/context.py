"""The principal of the request being served, for code that has no request at hand
(repository interceptors inside a transaction)."""

from __future__ import annotations

from contextvars import ContextVar

from app.auth.principal import Principal

# None outside requests (command line, delivery worker): internal work is not checked.
current_principal: ContextVar[Principal | None] = ContextVar("current_principal",
                                                             default=None)
