"""What a database error means for the client: an outage worth retrying, or a query too big.

Only the first is a 503: a lost or refused connection, a busy or locked database, a server
shutting down or out of connections or memory, a transaction to run again. A statement the
database refuses for its own size (SQLite's expression depth, PostgreSQL's 65,535 parameters
or stack depth) would fail again on retry: it is the client's search that is too costly.
Anything else is a fault of ours, answered 500.
"""

from __future__ import annotations

import enum

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class DatabaseFault(enum.Enum):
    UNAVAILABLE = "unavailable"
    TOO_COMPLEX = "too-complex"
    OTHER = "other"


# PostgreSQL SQLSTATE prefixes: 08 connection exception, 53 insufficient resources (memory,
# disk, connections), 57P0 shutting down / not accepting connections, 57014 statement timeout,
# 55P03 lock timeout, 40001/40P01 serialization failure and deadlock (retry the transaction).
PG_UNAVAILABLE = ("08", "53", "57P0", "57014", "55P03", "40001", "40P01")
PG_TOO_COMPLEX = ("54",)  # program limit exceeded: statement too complex, too many arguments
# Raised by libpq itself, before anything reaches the server (no SQLSTATE).
PG_CLIENT_TOO_COMPLEX = ("number of parameters must be between",)

# SQLite primary result codes.
SQLITE_ERROR, SQLITE_NOMEM, SQLITE_BUSY, SQLITE_LOCKED = 1, 7, 5, 6
SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_TOOBIG = 10, 13, 14, 18
SQLITE_UNAVAILABLE = {SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_IOERR, SQLITE_FULL,
                      SQLITE_CANTOPEN}
# SQLITE_ERROR covers every kind of error; these messages are its statement-size limits.
SQLITE_TOO_COMPLEX = ("expression tree is too large", "too many sql variables",
                      "too many terms in compound select", "too many from clause terms",
                      "parser stack overflow", "too many arguments on function",
                      "at most 64 tables in a join", "like or glob pattern too complex")


def classify(error: Exception) -> DatabaseFault:
    if isinstance(error, PoolTimeout):
        return DatabaseFault.UNAVAILABLE  # every pooled connection busy: overload
    if not isinstance(error, DBAPIError):
        return DatabaseFault.OTHER
    if error.connection_invalidated or error.statement is None:
        return DatabaseFault.UNAVAILABLE  # lost mid-statement, or failed to connect at all
    original = error.orig
    message = str(original).lower()
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith(PG_TOO_COMPLEX):
            return DatabaseFault.TOO_COMPLEX
        if sqlstate.startswith(PG_UNAVAILABLE):
            return DatabaseFault.UNAVAILABLE
        return DatabaseFault.OTHER
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF  # extended codes keep the primary one in their low byte
        if primary in SQLITE_UNAVAILABLE:
            return DatabaseFault.UNAVAILABLE
        if primary == SQLITE_TOOBIG or (primary == SQLITE_ERROR
                                        and message.startswith(SQLITE_TOO_COMPLEX)):
            return DatabaseFault.TOO_COMPLEX
        return DatabaseFault.OTHER
    if any(text in message for text in PG_CLIENT_TOO_COMPLEX):
        return DatabaseFault.TOO_COMPLEX
    return DatabaseFault.OTHER
