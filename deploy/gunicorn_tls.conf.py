"""gunicorn terminating TLS itself, with optional SAS client certificates (mutual TLS).

    TLS_CERT_FILE=/etc/fhir-agenda/server.pem TLS_KEY_FILE=/etc/fhir-agenda/server.key \\
    CLIENT_CA_BUNDLE=/etc/fhir-agenda/igc-sante-ca.pem \\
    gunicorn -c deploy/gunicorn_tls.conf.py wsgi:app

Environment: TLS_CERT_FILE (server certificate chain, PEM), TLS_KEY_FILE, CLIENT_CA_BUNDLE
(CAs of the client certificates, read by the app too), GUNICORN_BIND (default 0.0.0.0:8443),
GUNICORN_WORKERS (default 2), GUNICORN_THREADS (default 4). Command-line options win.

Client certificates are optional at the TLS level (the web pages' browsers have none) but a
presented one must chain to CLIENT_CA_BUNDLE and be within its dates, or the handshake fails.
The application then refuses the SAS-facing FHIR interactions without an allowed certificate,
and refuses revoked ones (CLIENT_CRL_FILES / CLIENT_CRL_URLS, app/auth/revocation.py: checked
by the app, not in the handshake, so that refreshed CRLs apply without a restart). For
/metrics across workers set PROMETHEUS_MULTIPROC_DIR to an empty directory (app/metrics.py).
"""

import os
import ssl
from collections.abc import Callable

# As in ../gunicorn.conf.py: long GET searches fit in the request line, and what gunicorn
# refuses itself (414, 431, 400) is answered as a FHIR OperationOutcome.
from app.fhir.gunicorn_errors import LIMIT_REQUEST_LINE, post_worker_init  # noqa: F401

# Log lines in the application's format; Prometheus files of dead workers retired.
from app.ops.gunicorn_hooks import child_exit, logconfig_dict  # noqa: F401


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"deploy/gunicorn_tls.conf.py: {name} must be set")
    return value


bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8443")]
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Hands the verified peer certificate to the app (app/auth/gunicorn_tls.py).
worker_class = "app.auth.gunicorn_tls.ThreadWorkerWithCertificate"
limit_request_line = LIMIT_REQUEST_LINE

certfile = _required("TLS_CERT_FILE")
keyfile = _required("TLS_KEY_FILE")
ca_certs = _required("CLIENT_CA_BUNDLE")
cert_reqs = ssl.CERT_OPTIONAL


def ssl_context(conf: object, default_ssl_context_factory: Callable[[], ssl.SSLContext]
                ) -> ssl.SSLContext:
    # The default factory loads certfile/keyfile, ca_certs and cert_reqs set above.
    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # SAS security spec: TLS 1.2 minimum
    context.verify_mode = ssl.CERT_OPTIONAL
    return context
