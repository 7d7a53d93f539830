"""SMTP sending (app/accounts/mailer.py) against a real aiosmtpd server, and its settings."""

from __future__ import annotations

import smtplib

import pytest

from app.accounts.mailer import SmtpMailer, password_reset_mail
from app.config import Settings
from tests.support.smtp import SmtpServer


def test_sends_a_french_plain_text_mail() -> None:
    subject, body = password_reset_mail("Jeanne Martin", "https://agenda.example/r/abc", 60)
    with SmtpServer() as smtp:
        SmtpMailer(host=smtp.host, port=smtp.port, sender="Agenda <agenda@example.fr>").send(
            "jeanne.martin@example.fr", subject, body)
    [mail] = smtp.received
    assert mail.rcpt_tos == ["jeanne.martin@example.fr"]
    assert mail.mail_from == "agenda@example.fr"
    assert mail.message["Subject"] == "Réinitialisation de votre mot de passe"
    assert mail.message.get_content_type() == "text/plain"
    assert mail.message["Message-ID"] and mail.message["Date"]
    assert "Bonjour Jeanne Martin," in mail.body
    assert "https://agenda.example/r/abc" in mail.body
    assert "expire dans 60 minutes" in mail.body


# Plain AUTH without TLS is fine on the loopback of a test; aiosmtpd warns about it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_logs_in_when_a_user_is_configured() -> None:
    with SmtpServer(login=("agenda", "s3cret")) as smtp:
        SmtpMailer(host=smtp.host, port=smtp.port, user="agenda", password="s3cret").send(
            "a@example.fr", "Objet", "Texte")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            SmtpMailer(host=smtp.host, port=smtp.port, user="agenda", password="faux").send(
                "a@example.fr", "Objet", "Texte")
        with pytest.raises(smtplib.SMTPException):  # this server refuses anonymous mail
            SmtpMailer(host=smtp.host, port=smtp.port).send("a@example.fr", "Objet", "Texte")
    assert len(smtp.received) == 1
    assert ("agenda", "s3cret") in smtp.auth_attempts


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings.from_env()
    assert (defaults.smtp_host, defaults.smtp_port, defaults.smtp_user) == (None, 25, None)
    assert defaults.smtp_starttls is False and defaults.password_reset_ttl_minutes == 60
    for name, value in {"SMTP_HOST": "smtp.example.fr", "SMTP_PORT": "587",
                        "SMTP_USER": "agenda", "SMTP_PASSWORD": "pw", "SMTP_STARTTLS": "true",
                        "MAIL_FROM": "agenda@example.fr", "PASSWORD_RESET_TTL_MINUTES": "15",
                        "SECRET_KEY": "k" * 32, "SESSION_IDLE_MINUTES": "30"}.items():
        monkeypatch.setenv(name, value)
    mailer = SmtpMailer.from_settings(settings := Settings.from_env())
    assert mailer == SmtpMailer(host="smtp.example.fr", port=587, user="agenda", password="pw",
                                starttls=True, sender="agenda@example.fr", timeout=10.0)
    assert settings.password_reset_ttl_minutes == 15 and settings.secret_key == "k" * 32
    assert settings.session_idle_minutes == 30
