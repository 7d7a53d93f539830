"""The blueprint of the French web pages; each page module adds its routes to it."""

from __future__ import annotations

from flask import Blueprint

from app.web.display import french_phone

web = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                static_url_path="/web/static")
web.add_app_template_filter(french_phone, "telephone")
