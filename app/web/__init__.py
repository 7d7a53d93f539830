"""French web pages (server-rendered): account pages today, booking pages later."""

from app.web.routes import web

__all__ = ["web"]
