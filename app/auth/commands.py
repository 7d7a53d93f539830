"""`fhir-agenda oauth register-client | list | disable`: the OAuth 2 client registry."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from app.auth import clients
from app.auth.oauth_server import external_server, token_endpoint
from app.db import read_transaction, write_transaction
from app.state import state_of


@click.group("oauth", cls=AppGroup)
def oauth_group() -> None:
    """OAuth 2 clients (third-party agendas)."""


@oauth_group.command("register-client")
@click.option("--name", required=True, help="Who the client is, e.g. the agenda software")
@click.option("--scope", required=True,
              help='Allowed SMART scopes, e.g. "system/Slot.rs system/Appointment.cruds"')
@click.option("--practitioner", "practitioners", multiple=True, metavar="ID_OR_RPPS",
              help="Restrict to this practitioner's agendas (logical id, RPPS or ADELI); "
                   "repeatable")
@click.option("--organization", "organizations", multiple=True, metavar="ID",
              help="Restrict to the agendas of this Organization (logical id); repeatable")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (client_id, client_secret, scope, practitioners, "
                   "organizations, token_endpoint) instead of text, for scripts")
def register_client(name: str, scope: str, practitioners: tuple[str, ...],
                    organizations: tuple[str, ...], as_json: bool) -> None:
    """Register a client and print its credentials (the secret is shown only once)."""
    state = state_of(current_app)
    try:
        with state.writing("fhir-agenda oauth") as repo:
            client, secret = clients.register(repo, name, scope, practitioners, organizations)
    except clients.RegistrationError as exc:
        raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({
            "client_id": client.client_id,
            "client_secret": secret,
            "name": client.name,
            "scope": client.scope,
            "practitioners": sorted(client.practitioners),
            "organizations": sorted(client.organizations),
            # None: tokens come from the external authorisation server.
            "token_endpoint": (None if external_server(state.settings)
                               else token_endpoint(state.settings)),
        }))
        return
    click.echo(f"client_id:      {client.client_id}")
    click.echo(f"client_secret:  {secret}")
    click.echo(f"scope:          {client.scope}")
    click.echo(f"restricted to:  {_restrictions(client)}")
    if external_server(state.settings):
        click.echo("tokens:         from the external authorisation server (this client id "
                   "must be the one it puts in its tokens)")
    else:
        click.echo(f"token_endpoint: {token_endpoint(state.settings)}")
    click.echo("Keep the secret now: only its hash is stored.")


@oauth_group.command("list")
def list_clients() -> None:
    """List registered clients (never their secrets)."""
    with read_transaction(state_of(current_app).engine) as conn:
        registered = clients.listing(conn)
    for client in registered:
        status = (f"disabled {client.disabled_at:%Y-%m-%d %H:%M}" if client.disabled_at
                  else "active")
        click.echo(f"{client.client_id}\t{status}\t{client.name}\t{client.scope}\t"
                   f"{_restrictions(client)}")
    if not registered:
        click.echo("No OAuth clients registered")


@oauth_group.command("disable")
@click.argument("client_id")
def disable_client(client_id: str) -> None:
    """Refuse the client's token requests, and the tokens it already holds."""
    with write_transaction(state_of(current_app).engine) as conn:
        if not clients.disable(conn, client_id):
            raise click.ClickException(f"No active client {client_id!r}")
    click.echo(f"{client_id} disabled")


def _restrictions(client: clients.RegisteredClient) -> str:
    if not client.restricted:
        return "every agenda"
    return " ".join([f"Practitioner/{p}" for p in sorted(client.practitioners)]
                    + [f"Organization/{o}" for o in sorted(client.organizations)])
