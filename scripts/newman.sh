#!/usr/bin/env bash
# Runs the Postman collection with newman against the real server (gunicorn) on a fresh,
# migrated SQLite database loaded with the demo dataset. Exits with newman's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

COLLECTION=${NEWMAN_COLLECTION:-postman/fhir-agenda.postman_collection.json}
ENVIRONMENT=${NEWMAN_ENVIRONMENT:-postman/local.postman_environment.json}
NEWMAN=.tools/node_modules/.bin/newman
VENV_BIN=${VENV_BIN:-.venv/bin}

if [ ! -f "$COLLECTION" ]; then
    echo "newman.sh: $COLLECTION does not exist (yet): no Postman collection to run." >&2
    exit 1
fi
if [ ! -x "$NEWMAN" ]; then
    echo "newman.sh: $NEWMAN not found: run 'make node-tools' first." >&2
    exit 1
fi
if [ ! -x "$VENV_BIN/fhir-agenda" ]; then
    echo "newman.sh: $VENV_BIN/fhir-agenda not found: run 'make venv' first." >&2
    exit 1
fi

workdir=$(mktemp -d "${TMPDIR:-/tmp}/fhir-agenda-newman.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT
# Turn signals into a normal exit so that the EXIT trap stops the server.
trap 'exit 130' INT
trap 'exit 143' TERM

port=$("$VENV_BIN/python" -c '
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])')
base_url="http://127.0.0.1:$port/fhir"
export DATABASE_URL="sqlite:///$workdir/newman.db"
export FHIR_BASE_URL="$base_url"
# The collection exercises FHIR behaviour, not authentication (tests/test_mtls.py and
# tests/test_oauth.py do): run the server with the checks explicitly off.
export SECURITY_PROFILE=development

"$VENV_BIN/fhir-agenda" migrate
"$VENV_BIN/fhir-agenda" load-demo

gunicorn_options=(-b "127.0.0.1:$port" -w 2 --graceful-timeout 5)
# gunicorn >= 27 opens a control socket at one fixed path per user; concurrent servers
# (tests, `make run`) would take it from each other.
if "$VENV_BIN/python" -c 'import sys; from gunicorn.config import Config
sys.exit("control_socket_disable" not in Config().settings)'; then
    gunicorn_options+=(--no-control-socket)
fi
"$VENV_BIN/gunicorn" "${gunicorn_options[@]}" wsgi:app >"$workdir/gunicorn.log" 2>&1 &
server_pid=$!

if ! "$VENV_BIN/python" - "$base_url/metadata" "$server_pid" <<'PY'; then
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("gunicorn exited during start-up")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(f"{url} did not answer 200 within 60s")
PY
    echo "newman.sh: the server did not start; gunicorn log:" >&2
    cat "$workdir/gunicorn.log" >&2
    exit 1
fi
echo "FHIR server for newman: $base_url"

environment_args=()
if [ -f "$ENVIRONMENT" ]; then
    environment_args=(-e "$ENVIRONMENT")
else
    echo "newman.sh: $ENVIRONMENT not found, running with baseUrl only." >&2
fi

status=0
"$NEWMAN" run "$COLLECTION" "${environment_args[@]}" --env-var "baseUrl=$base_url" --bail \
    || status=$?
if [ "$status" -ne 0 ]; then
    echo "newman.sh: newman failed (status $status); last lines of the gunicorn log:" >&2
    tail -n 40 "$workdir/gunicorn.log" >&2 || true
fi
exit "$status"
