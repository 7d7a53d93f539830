"""Outgoing mail over SMTP (smtplib), and the French texts we send."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from app.config import Settings

log = logging.getLogger(__name__)


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    host: str = "localhost"
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "no-reply@localhost"
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        return cls(host=settings.smtp_host or cls.host, port=settings.smtp_port,
                   user=settings.smtp_user,
                   password=settings.smtp_password, starttls=settings.smtp_starttls,
                   sender=settings.mail_from, timeout=settings.smtp_timeout_seconds)

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid()
        message.set_content(body)  # text/plain; charset utf-8
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


@dataclass(frozen=True)
class LogMailer:
    """Development without a relay: the mail is written to the log, not sent."""

    def send(self, to: str, subject: str, body: str) -> None:
        log.warning("\n%s\nMail NOT sent (no SMTP_HOST; development profile) to %s\n"
                    "Subject: %s\n\n%s%s", "-" * 78, to, subject, body, "-" * 78)


def mailer_for(settings: Settings) -> Mailer | None:
    """The relay of SMTP_HOST; without one, the log in development, else nothing (the
    pages must then say that no mail can be sent)."""
    if settings.smtp_host:
        return SmtpMailer.from_settings(settings)
    return LogMailer() if settings.development else None


def password_reset_mail(name: str, link: str, ttl_minutes: int) -> tuple[str, str]:
    """Subject and plain-text body of the reset mail."""
    subject = "Réinitialisation de votre mot de passe"
    body = (
        f"Bonjour {name},\n\n"
        "Une demande de réinitialisation du mot de passe de votre compte a été faite.\n"
        "Pour choisir un nouveau mot de passe, ouvrez le lien suivant :\n\n"
        f"{link}\n\n"
        f"Ce lien ne peut servir qu'une fois et expire dans {ttl_minutes} minutes.\n"
        "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : votre mot de "
        "passe actuel reste valable.\n\n"
        "Ce message est envoyé automatiquement, merci de ne pas y répondre.\n"
    )
    return subject, body
