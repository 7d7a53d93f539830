"""gunicorn settings of every fhir-agenda server: `gunicorn -c gunicorn.conf.py wsgi:app`.

`make run`, scripts/newman.sh and the tests' live server pass it; gunicorn also reads
./gunicorn.conf.py by itself when started from this directory without `-c`.
deploy/gunicorn_tls.conf.py (gunicorn terminating TLS) sets the same two things.
"""

# A long GET search fits in the request line (see app/fhir/gunicorn_errors.py), and what
# gunicorn still refuses itself (414, 431, 400) is answered as a FHIR OperationOutcome.
from app.fhir.gunicorn_errors import LIMIT_REQUEST_LINE, post_worker_init  # noqa: F401

# Log lines in the application's format; Prometheus files of dead workers retired.
from app.ops.gunicorn_hooks import child_exit, logconfig_dict  # noqa: F401

limit_request_line = LIMIT_REQUEST_LINE
