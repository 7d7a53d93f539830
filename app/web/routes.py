"""French account pages: login, logout, forgotten password, reset, terms of use, account.

Every request re-reads its session from the database (app/web/current.py), so a
deactivation or a password reset ends open sessions on their next click. Single sign-on is
in app/web/sso.py, the booking pages in app/web/agenda.py and app/web/appointments.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import (
    Response,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from app.accounts.mailer import LogMailer, mailer_for
from app.accounts.models import TERMS_VERSION
from app.accounts.service import (
    MIN_PASSWORD_LENGTH,
    InvalidResetToken,
    WeakPassword,
    accept_terms,
    authenticate,
    check_reset_token,
    has_regulator_rights,
    request_password_reset,
    reset_password,
)
from app.auth.roles import LABELS, Right, has_right, rights
from app.auth.sso import provider_origins, sso_client
from app.state import current_state, state_of
from app.web import security
from app.web.blueprint import web
from app.web.current import (
    current_account,
    current_session,
    load_current,
    login_required,
    safe_next,
    transaction,
)
from app.web.origin import origin_of
from app.web.pages import error_page
from app.web.signin import drop_session, sign_in, signed_out
from app.web.sso import logout_at_provider

log = logging.getLogger(__name__)

ROLE_LABELS = {"regulator": "Régulateur", "staff": "Secrétariat",
               "practitioner": "Professionnel de santé", "administrator": "Administrateur"}
BAD_LOGIN = "Adresse électronique ou mot de passe incorrect."
# Pages a logged-in account may reach before accepting the terms of use.
TERMS_EXEMPT = {"web.terms", "web.logout", "web.static", "web.signed_out_page"}


@web.record_once
def _configure(state: BlueprintSetupState) -> None:
    security.configure(state.app, state_of(state.app).settings)


@web.context_processor
def _template_globals() -> dict[str, Any]:
    settings = current_state().settings
    account, user_session = current_account(), current_session()
    can_book = bool(account and user_session
                    and has_right(account, user_session, Right.BOOK_FOR_PATIENT))
    return {"csrf_token": security.csrf_token, "account": account, "can_book": can_book,
            "role_labels": ROLE_LABELS, "sso_name": settings.oidc_provider_name,
            "development": settings.development}


@web.before_request
def _guard() -> Any:
    if request.endpoint == "web.static":
        return None
    if request.method == "POST" and not security.csrf_ok():
        return error_page(400, "Le formulaire a expiré ou n'est pas valide. "
                           "Rechargez la page et recommencez.")
    if not load_current():
        flash("Votre session a pris fin. Veuillez vous reconnecter.")
    account = current_account()
    if account is not None and account.terms_pending and request.endpoint not in TERMS_EXEMPT:
        return redirect(url_for("web.terms", next=safe_next(request.full_path.rstrip("?"))))
    return None


@web.after_request
def _headers(response: Response) -> Response:
    return security.add_headers(response, provider_origins())


@web.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    return error_page(error.code or 500, "La page demandée n'est pas disponible.")


@web.errorhandler(OperationalError)
@web.errorhandler(Exception)
def _unexpected(error: Exception) -> Any:
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return error_page(500, "Une erreur est survenue. Veuillez réessayer dans quelques instants.")


@web.route("/connexion", methods=["GET", "POST"])
def login() -> Any:
    next_url = safe_next(request.args.get("next"))
    if current_account() is not None:
        return redirect(next_url or url_for("web.account"))
    email, error = "", None
    if request.method == "POST":
        email = request.form.get("email", "")
        with transaction() as conn:
            account = authenticate(conn, email, request.form.get("password", ""))
        if account is not None:
            # Arriving through SAS's booking link (its origin kept in `next`) opens the
            # regulator rights with a password too ("flux v1").
            sign_in(account, method="password", origin=origin_of(next_url))
            return redirect(next_url or url_for("web.account"))
        error = BAD_LOGIN  # same text for unknown, inactive and wrong password
    return render_template("connexion.html", email=email, error=error, next_url=next_url,
                           sso=sso_client() is not None, from_sas=origin_of(next_url))


@web.route("/deconnexion", methods=["GET", "POST"])
def logout() -> Any:
    # GET only shows a button: logging out changes state, so it takes a CSRF-checked POST.
    if request.method == "GET":
        return render_template("deconnexion.html")
    user_session = current_session()
    id_token = user_session.id_token if user_session else None
    drop_session()
    signed_out(current_account())
    security.renew_csrf_token()
    if id_token:
        # Signed in through the SSO provider: sign out there too (RP-initiated logout).
        at_provider = logout_at_provider(id_token)
        if at_provider is not None:
            return at_provider
    flash("Vous êtes déconnecté.")
    return redirect(url_for("web.login"))


@web.route("/mot-de-passe-oublie", methods=["GET", "POST"])
def forgot_password() -> Any:
    settings = current_state().settings
    mailer = mailer_for(settings)
    if request.method == "GET":
        return render_template("mot_de_passe_oublie.html", sent=False, relay=mailer)
    if mailer is None:
        # No relay: say so, never pretend a mail went out.
        log.error("Password reset requested but SMTP_HOST is not set: no mail can be sent")
        return render_template("mot_de_passe_oublie.html", sent=False, relay=None), 503
    with transaction() as conn:
        request_password_reset(conn, request.form.get("email", ""), mailer,
                               settings.public_web_url,
                               ttl=timedelta(minutes=settings.password_reset_ttl_minutes))
    # Identical answer for every address: no way to learn who has an account.
    return render_template("mot_de_passe_oublie.html", sent=True, relay=mailer,
                           logged=isinstance(mailer, LogMailer),
                           ttl_minutes=settings.password_reset_ttl_minutes)


@web.route("/reinitialiser/<token>", methods=["GET", "POST"])
def reset(token: str) -> Any:
    if request.method == "GET":
        with transaction() as conn:
            valid = check_reset_token(conn, token) is not None
        return _reset_page(token) if valid else _invalid_link()
    password = request.form.get("password", "")
    if password != request.form.get("confirmation", ""):
        return _reset_page(token, "Les deux mots de passe ne sont pas identiques.")
    try:
        with transaction() as conn:
            reset_password(conn, token, password)
    except InvalidResetToken:
        return _invalid_link()
    except WeakPassword as weak:
        return _reset_page(token, str(weak))
    session.clear()
    flash("Votre mot de passe a été modifié. Vous pouvez vous connecter.")
    return redirect(url_for("web.login"))


def _reset_page(token: str, error: str | None = None) -> Any:
    return render_template("reinitialiser.html", token=token, error=error,
                           min_length=MIN_PASSWORD_LENGTH), 400 if error else 200


def _invalid_link() -> Any:
    return render_template("lien_invalide.html"), 410


@web.route("/cgu", methods=["GET", "POST"])
def terms() -> Any:
    account = current_account()
    next_url = safe_next(request.args.get("next"))
    if request.method == "POST":
        if account is None:
            return redirect(url_for("web.login", next=url_for("web.terms")))
        with transaction() as conn:
            accept_terms(conn, account, TERMS_VERSION)
        return redirect(next_url or url_for("web.account"))
    return render_template("cgu.html", next_url=next_url, version=TERMS_VERSION)


@web.get("/compte")
@login_required
def account() -> Any:
    user, user_session = current_account(), current_session()
    assert user is not None and user_session is not None
    return render_template("compte.html",
                           regulator_rights=has_regulator_rights(user, user_session),
                           rights=[LABELS[r] for r in sorted(rights(user, user_session))])
