"""Single sign-on pages ("flux v2"): off to the provider, back with an identity, and the
logout at the provider. The protocol is Authlib's (app/auth/sso.py).

The regulator right comes from the `origin` SAS appended to the booking link, carried in
the page to return to (`next`); the identity maps to the account SAS created (INT_R02).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import redirect, render_template, request, session, url_for

from app.accounts.identity import FOUND, INACTIVE, regulator_account
from app.auth.sso import SSO_ERRORS, id_token_rules, identity_of, sso_client
from app.ops.meters import LOGINS
from app.state import current_state
from app.web.blueprint import web
from app.web.current import safe_next, transaction
from app.web.origin import origin_of
from app.web.pages import error_page
from app.web.signin import drop_session, refuse, sign_in

log = logging.getLogger(__name__)

NEXT_KEY = "sso_next"
UNAVAILABLE = ("Le service d'authentification ({name}) ne répond pas pour le moment. "
               "Veuillez réessayer dans quelques instants.")


def _public(path: str) -> str:
    # The provider knows our addresses as registered: built from PUBLIC_WEB_URL, never
    # from the Host header of the request.
    return current_state().settings.public_web_url + path


def start_sso(next_url: str | None) -> Any:
    """Send the browser to the provider (one redirect); back to `next_url` afterwards."""
    client = sso_client()
    if client is None:
        return redirect(url_for("web.login", next=next_url))
    drop_session()  # a new sign-in replaces whatever session this browser had
    session[NEXT_KEY] = next_url
    try:
        return client.authorize_redirect(_public(url_for("web.sso_callback")))
    except SSO_ERRORS:
        log.exception("The SSO provider's discovery document could not be read")
        return error_page(503, UNAVAILABLE.format(
            name=current_state().settings.oidc_provider_name))


@web.get("/sso/connexion")
def sso_login() -> Any:
    return start_sso(safe_next(request.args.get("next")))


@web.get("/sso/retour")
def sso_callback() -> Any:
    client = sso_client()
    if client is None:
        return error_page(404, "La connexion unique n'est pas configurée sur ce service.")
    settings = current_state().settings
    next_url = safe_next(session.pop(NEXT_KEY, None))
    try:
        # state, PKCE verifier, ID token (JWKS signature, iss, aud, exp, nonce), then UserInfo.
        token = client.authorize_access_token(claims_options=id_token_rules(client, settings))
        identity = identity_of(dict(client.userinfo(token=token)), dict(token["userinfo"]),
                               settings)
    except SSO_ERRORS as exc:
        log.warning("SSO sign-in failed: %s", exc)
        LOGINS.labels("sso", "refused").inc()
        refuse("sso (no identity)", None, f"provider answer refused: {exc}")
        return _refused("La connexion n'a pas abouti", "La réponse du service "
                        "d'authentification n'a pas pu être vérifiée. Veuillez recommencer "
                        "depuis la plateforme numérique SAS.", next_url, status=400)
    with transaction() as conn:
        match = regulator_account(conn, identity)
    if match.outcome != FOUND or match.account is None:
        inactive = match.outcome == INACTIVE
        LOGINS.labels("sso", "refused").inc()
        refuse(f"sso {identity.label}", match.account,
               "deactivated regulator account" if inactive else "unknown identity")
        return _refused(
            "Accès refusé",
            "Votre compte régulateur a été désactivé par la plateforme numérique SAS."
            if inactive else
            "Votre identité n'est associée à aucun compte régulateur de ce service. Le "
            "compte est créé par la plateforme numérique SAS : contactez son support.",
            next_url, status=403, password=not inactive)
    LOGINS.labels("sso", "accepted").inc()
    sign_in(match.account, method=f"sso {settings.oidc_provider_name}",
            origin=origin_of(next_url), id_token=token.get("id_token"))
    return redirect(next_url or url_for("web.account"))


def _refused(title: str, message: str, next_url: str | None, *, status: int,
             password: bool = True) -> Any:
    """The French refusal page; `password`: offer the INT_R02 password sign-in instead."""
    return render_template("acces_refuse.html", title=title, message=message,
                           next_url=next_url, password=password), status


def logout_at_provider(id_token: str) -> Any | None:
    """The redirect to the provider's end_session_endpoint (id_token_hint, then back to
    us), or None when it cannot be built (the local logout stands)."""
    client = sso_client()
    if client is None:
        return None
    try:
        url = client.create_logout_url(
            post_logout_redirect_uri=_public(url_for("web.signed_out_page")),
            id_token_hint=id_token)["url"]
    except (*SSO_ERRORS, RuntimeError):
        log.warning("No logout at the SSO provider (no end_session_endpoint?)", exc_info=True)
        return None
    return redirect(url)


@web.get("/deconnexion/terminee")
def signed_out_page() -> Any:
    return render_template("deconnecte.html")
