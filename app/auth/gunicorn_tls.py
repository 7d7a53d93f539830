"""gunicorn workers that hand the TLS client certificate to the application.

gunicorn verifies the client certificate during the handshake but does not tell the WSGI app
which one it was. These workers put its DER bytes in the environ under PEER_CERTIFICATE_KEY, a
key no HTTP header can produce (headers become HTTP_* keys); any value already there is
replaced. Use with deploy/gunicorn_tls.conf.py:

    gunicorn -c deploy/gunicorn_tls.conf.py wsgi:app

(`worker_class` there is `app.auth.gunicorn_tls.ThreadWorkerWithCertificate`;
SyncWorkerWithCertificate also exists.)
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from app.auth.mtls import PEER_CERTIFICATE_KEY

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_peer_certificate(wsgi: Wsgi) -> Wsgi:
    """Wrap a WSGI app so that it sees the client certificate of the TLS connection."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.pop(PEER_CERTIFICATE_KEY, None)
        connection = environ.get("gunicorn.socket")  # set by gunicorn for every request
        if isinstance(connection, ssl.SSLSocket):
            der = connection.getpeercert(binary_form=True)
            if der:
                environ[PEER_CERTIFICATE_KEY] = der
        return wsgi(environ, start_response)

    return app


class _PeerCertificateMixin:
    wsgi: Wsgi

    def load_wsgi(self) -> None:
        super().load_wsgi()  # type: ignore[misc]
        self.wsgi = with_peer_certificate(self.wsgi)


# Not named "...SyncWorker": gunicorn swaps a class of that name for its plain ThreadWorker
# when threads > 1, which would silently drop the certificate.
class SyncWorkerWithCertificate(_PeerCertificateMixin, SyncWorker):
    pass


class ThreadWorkerWithCertificate(_PeerCertificateMixin, ThreadWorker):
    pass
