"""French web pages (server-rendered): accounts and sign-in, and the booking pages SAS's
links open."""

from app.web import agenda, appointments, routes, sso  # noqa: F401  (routes register)
from app.web.blueprint import web

__all__ = ["web"]
