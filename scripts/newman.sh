#!/usr/bin/env bash
# Runs the Postman collections with newman against the real server (gunicorn), each on its own
# fresh, migrated SQLite database loaded with the demo dataset:
#   1. postman/fhir-agenda.postman_collection.json (FHIR behaviour) on a server in the
#      development security profile (no authentication), with the development OpenID
#      Connect provider (scripts/dev_idp.mjs) for the booking link's single sign-on;
#   2. postman/security.postman_collection.json (authentication and authorisation) on a
#      server in the production profile, with two OAuth clients registered through the CLI
#      beforehand and their credentials passed to newman with --env-var.
# Both runs happen even when the first fails; the exit status is non-zero if either fails.
# NEWMAN_RUNS="main" or "security" runs one of them only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

COLLECTION=${NEWMAN_COLLECTION:-postman/fhir-agenda.postman_collection.json}
ENVIRONMENT=${NEWMAN_ENVIRONMENT:-postman/local.postman_environment.json}
SECURITY_COLLECTION=${NEWMAN_SECURITY_COLLECTION:-postman/security.postman_collection.json}
SECURITY_ENVIRONMENT=${NEWMAN_SECURITY_ENVIRONMENT:-postman/security.postman_environment.json}
RUNS=${NEWMAN_RUNS:-main security}
NEWMAN=.tools/node_modules/.bin/newman
VENV_BIN=${VENV_BIN:-.venv/bin}
# The demo practitioner the restricted OAuth client manages (Dr Élise Martin,
# fixtures/demo/resources.json); passed to the security collection as `rpps`.
RESTRICTED_RPPS=810003456786

for run in $RUNS; do
    case $run in
        main) collection=$COLLECTION ;;
        security) collection=$SECURITY_COLLECTION ;;
        *) echo "newman.sh: NEWMAN_RUNS: unknown run '$run' (expected main, security)" >&2
           exit 2 ;;
    esac
    if [ ! -f "$collection" ]; then
        echo "newman.sh: $collection does not exist (yet): no Postman collection to run." >&2
        exit 1
    fi
done
if [ ! -x "$NEWMAN" ]; then
    echo "newman.sh: $NEWMAN not found: run 'make node-tools' first." >&2
    exit 1
fi
if [ ! -x "$VENV_BIN/fhir-agenda" ]; then
    echo "newman.sh: $VENV_BIN/fhir-agenda not found: run 'make venv' first." >&2
    exit 1
fi

workdir=$(mktemp -d "${TMPDIR:-/tmp}/fhir-agenda-newman.XXXXXX")
server_pids=()
cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$workdir"
}
trap cleanup EXIT
# Turn signals into a normal exit so that the EXIT trap stops the servers.
trap 'exit 130' INT
trap 'exit 143' TERM

# gunicorn.conf.py: the request-line limit and OperationOutcome error pages of every server.
gunicorn_options=(-c gunicorn.conf.py -w 2 --graceful-timeout 5)
# gunicorn >= 27 opens a control socket at one fixed path per user; concurrent servers
# (tests, `make run`, the two servers of this script) would take it from each other.
if "$VENV_BIN/python" -c 'import sys; from gunicorn.config import Config
sys.exit("control_socket_disable" not in Config().settings)'; then
    gunicorn_options+=(--no-control-socket)
fi

free_port() {
    "$VENV_BIN/python" -c '
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])'
}

# prepare_server NAME PROFILE: a fresh database with the demo data for the server NAME in
# PROFILE; sets server_port, base_url and server_env (the environment of its commands and
# of gunicorn).
prepare_server() {
    local name=$1 profile=$2
    server_port=$(free_port)
    base_url="http://127.0.0.1:$server_port/fhir"
    server_env=("DATABASE_URL=sqlite:///$workdir/$name.db" "FHIR_BASE_URL=$base_url"
                "SECURITY_PROFILE=$profile")
    if [ "$profile" = production ]; then
        # Keys of this run only: nothing read from or written to instance/.
        "$VENV_BIN/python" - "$workdir/$name-signing-key.pem" <<'PY'
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
with open(sys.argv[1], "wb") as out:
    out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
PY
        server_env+=("OAUTH_SIGNING_KEY=$workdir/$name-signing-key.pem"
                     "SECRET_KEY=$("$VENV_BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))')"
                     # The production profile refuses http:// URLs except on a loopback
                     # host with this opt-in (app/ops/startup.py): a local test server.
                     "PUBLIC_WEB_URL=http://127.0.0.1:$server_port" "ALLOW_HTTP_LOOPBACK=1")
    fi
    env "${server_env[@]}" "$VENV_BIN/fhir-agenda" migrate
    env "${server_env[@]}" "$VENV_BIN/fhir-agenda" load-demo
}

# start_server NAME: gunicorn on the database prepared by prepare_server, waits for
# GET /metadata (public in every profile) to answer 200.
start_server() {
    local name=$1
    env "${server_env[@]}" "$VENV_BIN/gunicorn" -b "127.0.0.1:$server_port" \
        "${gunicorn_options[@]}" wsgi:app >"$workdir/$name.log" 2>&1 &
    server_pids+=($!)
    if ! "$VENV_BIN/python" - "$base_url/metadata" "$!" <<'PY'; then
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
        echo "newman.sh: the $name server did not start; gunicorn log:" >&2
        cat "$workdir/$name.log" >&2
        exit 1
    fi
    echo "FHIR server for newman ($name): $base_url"
}

# start_dev_idp NAME: the development OpenID Connect provider (scripts/dev_idp.mjs, standing in
# for Pro Santé Connect) for the server prepared by prepare_server, which then uses it for
# single sign-on; its issuer goes to newman as `idpIssuer`.
start_dev_idp() {
    local name=$1 port site
    port=$(free_port)
    site=${base_url%/fhir}
    idp_issuer="http://127.0.0.1:$port"
    DEV_IDP_PORT=$port DEV_IDP_REDIRECT_URIS="$site/sso/retour" \
        DEV_IDP_POST_LOGOUT_URIS="$site/deconnexion/terminee" \
        node scripts/dev_idp.mjs >"$workdir/$name-idp.log" 2>&1 &
    server_pids+=($!)
    if ! "$VENV_BIN/python" - "$idp_issuer/.well-known/openid-configuration" <<'PY'; then
import sys, time, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
            sys.exit(0 if response.status == 200 else 1)
    except OSError:
        time.sleep(0.2)
sys.exit("the development identity provider did not start")
PY
        cat "$workdir/$name-idp.log" >&2
        exit 1
    fi
    server_env+=("PUBLIC_WEB_URL=$site"
                 "OIDC_DISCOVERY_URL=$idp_issuer/.well-known/openid-configuration"
                 "OIDC_CLIENT_ID=fhir-agenda-dev" "OIDC_CLIENT_SECRET=dev-secret-not-secret")
    echo "Development identity provider for newman ($name): $idp_issuer"
}

stop_servers() {
    local pid
    for pid in "${server_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    server_pids=()
}

# register_client OPTIONS…: registers an OAuth client through the CLI (register-client
# --json) on the prepared database; sets client_id and client_secret.
register_client() {
    local output
    output=$(env "${server_env[@]}" "$VENV_BIN/fhir-agenda" oauth register-client --json "$@")
    client_id="" client_secret=""
    { read -r client_id && read -r client_secret; } < <("$VENV_BIN/python" -c '
import json, sys
client = json.loads(sys.argv[1])
print(client["client_id"])
print(client["client_secret"])' "$output") || true
    if [ -z "$client_id" ] || [ -z "$client_secret" ]; then
        echo "newman.sh: could not read the credentials of the client registered with: $*" >&2
        exit 1
    fi
}

# run_newman NAME COLLECTION ENVIRONMENT [newman options…]: non-zero status on failure,
# after the last lines of the server log.
run_newman() {
    local name=$1 collection=$2 environment=$3 status=0
    shift 3
    local environment_args=()
    if [ -f "$environment" ]; then
        environment_args=(-e "$environment")
    else
        echo "newman.sh: $environment not found, running with the --env-var values only." >&2
    fi
    "$NEWMAN" run "$collection" "${environment_args[@]}" --env-var "baseUrl=$base_url" \
        "$@" --bail || status=$?
    if [ "$status" -ne 0 ]; then
        echo "newman.sh: newman failed on $collection (status $status); last lines of the" \
             "$name server's gunicorn log:" >&2
        tail -n 40 "$workdir/$name.log" >&2 || true
    fi
    return "$status"
}

status=0
summary=()
for run in $RUNS; do
    if [ "$run" = main ]; then
        # The main collection exercises FHIR behaviour, not authentication (tests/test_mtls.py,
        # tests/test_oauth.py and the security collection do): checks explicitly off.
        prepare_server main development
        start_dev_idp main
        start_server main
        run_status=0
        run_newman main "$COLLECTION" "$ENVIRONMENT" --env-var "idpIssuer=$idp_issuer" \
            || run_status=$?
    else
        prepare_server security production
        register_client --name "newman: Slot reader" --scope "system/Slot.read"
        reader_id=$client_id reader_secret=$client_secret
        register_client --name "newman: Dr Martin's agenda" --scope "system/*.*" \
            --practitioner "$RESTRICTED_RPPS"
        restricted_id=$client_id restricted_secret=$client_secret
        start_server security
        run_status=0
        run_newman security "$SECURITY_COLLECTION" "$SECURITY_ENVIRONMENT" \
            --env-var "clientId=$reader_id" --env-var "clientSecret=$reader_secret" \
            --env-var "restrictedClientId=$restricted_id" \
            --env-var "restrictedClientSecret=$restricted_secret" \
            --env-var "rpps=$RESTRICTED_RPPS" || run_status=$?
    fi
    stop_servers
    summary+=("$run: $([ "$run_status" -eq 0 ] && echo passed || echo "FAILED (status $run_status)")")
    [ "$run_status" -eq 0 ] || status=$run_status
done

echo "newman.sh: ${summary[*]}"
exit "$status"
