"""The `sas-selftest` command: needs no configuration of its own (it is a client of the
deployment it checks), so it runs without loading the application."""

from __future__ import annotations

import click

from app.ops.selftest.probe import Target
from app.ops.selftest.report import as_json, failed, render
from app.ops.selftest.run import Options, run


@click.command("sas-selftest")
@click.option("--base", required=True, metavar="URL",
              help="FHIR base of the deployment, e.g. https://agenda.example.fr/fhir")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False),
              help="Client certificate (PEM) presented as SAS (mutual TLS)")
@click.option("--key", type=click.Path(exists=True, dir_okay=False),
              help="Its private key (PEM)")
@click.option("--ca", type=click.Path(exists=True, dir_okay=False),
              help="CAs of the server certificate (default: the usual public CAs)")
@click.option("--rpps", multiple=True, metavar="IDNPS",
              help="Practitioner to search (prefixed IDNPS, 8…); repeatable. Default: those "
                   "of the directory with free slots")
@click.option("--cpts", multiple=True, metavar="IDNPS", help="Practitioner of a CPTS offer")
@click.option("--sos", multiple=True, metavar="SIRET", help="Structure of an SOS Médecins offer")
@click.option("--max-seconds", type=float, default=1.0, show_default=True,
              envvar="SAS_SELFTEST_MAX_SECONDS",
              help="Longest acceptable search (the ANS kit's limit; SAS_SELFTEST_MAX_SECONDS)")
@click.option("--allow-http", is_flag=True,
              help="Accept an http:// base (a development server) with a warning")
@click.option("--no-regulator", is_flag=True,
              help="Skip the regulator account round trip (it writes a throwaway account, "
                   "deactivated at the end)")
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
@click.option("--json", "as_json_output", is_flag=True, help="Print the report as JSON")
def selftest_command(base: str, cert: str | None, key: str | None, ca: str | None,
                     rpps: tuple[str, ...], cpts: tuple[str, ...], sos: tuple[str, ...],
                     max_seconds: float, allow_http: bool, no_regulator: bool, lang: str,
                     as_json_output: bool) -> None:
    """Check a deployment's SAS interfaces; exit status 1 when a rule fails."""
    if bool(cert) != bool(key):
        raise click.UsageError("--cert and --key go together")
    target = Target(base.rstrip("/"), (cert, key) if cert and key else None, ca)
    results = run(Options(target, rpps, cpts, sos, max_seconds, allow_http, not no_regulator))
    click.echo(as_json(results, target.base, lang) if as_json_output
               else render(results, target.base, lang))
    if failed(results):
        raise SystemExit(1)
