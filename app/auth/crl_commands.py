"""`fhir-agenda crl refresh | status`: the CRLs of the client CAs (app/auth/revocation.py)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from app.auth import crl_refresh
from app.auth.certificates import CertificateRefused, trusted_authorities
from app.auth.crl import Crl
from app.auth.revocation import current
from app.config import Settings
from app.state import state_of


@click.group("crl", cls=AppGroup)
def crl_group() -> None:
    """Certificate revocation lists of the client CAs (CLIENT_CRL_FILES, CLIENT_CRL_URLS)."""


@crl_group.command("refresh")
def refresh_command() -> None:
    """Download every CLIENT_CRL_URLS now (exit status 1 if one fails)."""
    settings = _settings()
    outcomes = crl_refresh.refresh(settings)
    if not outcomes:
        click.echo("No CLIENT_CRL_URLS to download")
    for outcome in outcomes:
        click.echo(f"{outcome.url}: {'' if outcome.ok else 'FAILED: '}{outcome.detail}")
    if not all(outcome.ok for outcome in outcomes):
        sys.exit(1)


@crl_group.command("status")
def status_command() -> None:
    """Each CRL held: issuer, thisUpdate, nextUpdate, revoked serials, staleness (exit status
    1 when a source is unusable, a CRL out of date or a CA without CRL)."""
    settings = _settings()
    if not settings.checks_revocation:
        click.echo("Revocation is not checked: set CLIENT_CRL_FILES and/or CLIENT_CRL_URLS")
        return
    try:
        authorities = trusted_authorities(settings.client_ca_bundle or "")
    except CertificateRefused as exc:
        raise click.ClickException(str(exc)) from exc
    now = datetime.now(UTC)
    revocations = current(settings, authorities)
    healthy = True
    for state in revocations.sources:
        click.echo(state.source.label)
        if state.source.url:
            fetched = crl_refresh.fetched_at(state.source.path)
            click.echo(f"  cache: {state.source.path} (downloaded "
                       f"{fetched.isoformat(timespec='seconds') if fetched else 'never'})")
        if state.problem:
            healthy = False
            click.echo(f"  UNUSABLE: {state.problem}")
        for crl in state.crls:
            fresh, line = _staleness(crl, now, settings)
            newer = revocations.crl_of(crl.issuer)
            if newer is not None and newer is not crl:
                fresh, line = True, f"not used: superseded by the newer CRL from {newer.source}"
            healthy = healthy and fresh
            click.echo(f"  issuer: {crl.issuer_name}\n"
                       f"  thisUpdate: {crl.this_update.isoformat()}\n"
                       f"  nextUpdate: {crl.next_update.isoformat()}\n"
                       f"  revoked serials: {len(crl.revoked)}\n  {line}")
    uncovered = [ca for ca in authorities if revocations.crl_of(ca) is None]
    for ca in uncovered:
        click.echo(f"no CRL for the CA {ca.subject.rfc4514_string()}: its client certificates "
                   "are refused")
    if not healthy or uncovered:
        sys.exit(1)


def _staleness(crl: Crl, now: datetime, settings: Settings) -> tuple[bool, str]:
    grace_end = crl.next_update + timedelta(hours=settings.client_crl_grace_hours)
    if now <= crl.next_update:
        return True, f"fresh: next update in {_duration(crl.next_update - now)}"
    if now <= grace_end:
        return False, (f"STALE for {_duration(now - crl.next_update)}: its issuer's "
                       f"certificates are refused in {_duration(grace_end - now)}")
    return False, (f"OUT OF DATE for {_duration(now - crl.next_update)}: its issuer's "
                   "certificates are refused")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h {minutes:02d}m" if days else f"{hours}h {minutes:02d}m"


def _settings() -> Settings:
    return state_of(current_app).settings
