"""French account pages: login, logout, forgotten password, reset, terms of use, account.

Every request re-reads its session from the database (app/web/current.py), so a
deactivation or a password reset ends open sessions on their next click.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
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

from app.accounts.mailer import SmtpMailer
from app.accounts.service import (
    MIN_PASSWORD_LENGTH,
    InvalidResetToken,
    WeakPassword,
    accept_terms,
    authenticate,
    check_reset_token,
    end_session,
    has_regulator_rights,
    request_password_reset,
    reset_password,
    start_session,
)
from app.auth.roles import LABELS, rights
from app.state import current_state, state_of
from app.web import security
from app.web.current import (
    SESSION_KEY,
    current_account,
    current_session,
    load_current,
    login_required,
    safe_next,
    transaction,
)

log = logging.getLogger(__name__)

web = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                static_url_path="/web/static")

ROLE_LABELS = {"regulator": "Régulateur", "staff": "Secrétariat",
               "practitioner": "Professionnel de santé", "administrator": "Administrateur"}
BAD_LOGIN = "Adresse électronique ou mot de passe incorrect."
# Pages a logged-in account may reach before accepting the terms of use.
TERMS_EXEMPT = {"web.terms", "web.logout", "web.static"}


@web.record_once
def _configure(state: BlueprintSetupState) -> None:
    security.configure(state.app, state_of(state.app).settings)


@web.context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": security.csrf_token, "account": current_account(),
            "role_labels": ROLE_LABELS}


@web.before_request
def _guard() -> Any:
    if request.endpoint == "web.static":
        return None
    if request.method == "POST" and not security.csrf_ok():
        return _error(400, "Le formulaire a expiré ou n'est pas valide. "
                           "Rechargez la page et recommencez.")
    if not load_current():
        flash("Votre session a pris fin. Veuillez vous reconnecter.")
    account = current_account()
    if account is not None and account.terms_pending and request.endpoint not in TERMS_EXEMPT:
        return redirect(url_for("web.terms", next=safe_next(request.full_path.rstrip("?"))))
    return None


@web.after_request
def _headers(response: Response) -> Response:
    return security.add_headers(response)


@web.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    return _error(error.code or 500, "La page demandée n'est pas disponible.")


@web.errorhandler(OperationalError)
@web.errorhandler(Exception)
def _unexpected(error: Exception) -> Any:
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return _error(500, "Une erreur est survenue. Veuillez réessayer dans quelques instants.")


def _error(status: int, message: str) -> tuple[str, int]:
    return render_template("erreur.html", message=message, status=status), status


def _open_session(token: str) -> None:
    # A fresh cookie at login: nothing planted before authentication survives it.
    session.clear()
    session[SESSION_KEY] = token
    security.renew_csrf_token()


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
            token = start_session(conn, account) if account else None
        if token is not None:
            _open_session(token)
            return redirect(next_url or url_for("web.account"))
        error = BAD_LOGIN  # same text for unknown, inactive and wrong password
    return render_template("connexion.html", email=email, error=error, next_url=next_url)


@web.route("/deconnexion", methods=["GET", "POST"])
def logout() -> Any:
    # GET only shows a button: logging out changes state, so it takes a CSRF-checked POST.
    if request.method == "GET":
        return render_template("deconnexion.html")
    with transaction() as conn:
        end_session(conn, session.get(SESSION_KEY))
    session.clear()
    security.renew_csrf_token()
    flash("Vous êtes déconnecté.")
    return redirect(url_for("web.login"))


@web.route("/mot-de-passe-oublie", methods=["GET", "POST"])
def forgot_password() -> Any:
    settings = current_state().settings
    if request.method == "GET":
        return render_template("mot_de_passe_oublie.html", sent=False)
    with transaction() as conn:
        request_password_reset(conn, request.form.get("email", ""),
                               SmtpMailer.from_settings(settings), settings.public_web_url,
                               ttl=timedelta(minutes=settings.password_reset_ttl_minutes))
    # Identical answer for every address: no way to learn who has an account.
    return render_template("mot_de_passe_oublie.html", sent=True,
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
            accept_terms(conn, account)
        return redirect(next_url or url_for("web.account"))
    return render_template("cgu.html", next_url=next_url)


@web.get("/compte")
@login_required
def account() -> Any:
    user, user_session = current_account(), current_session()
    assert user is not None and user_session is not None
    return render_template("compte.html",
                           regulator_rights=has_regulator_rights(user, user_session),
                           rights=[LABELS[r] for r in sorted(rights(user, user_session))])
