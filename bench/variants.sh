#!/usr/bin/env bash
# Measure the baseline and the proposed app/ changes (bench/experiments.py) back to back.
#   bench/variants.sh DATABASE_URL [OUTPUT_DIR]
# Leaves the database as it found it (statistics dropped, bench_sas_place dropped).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
URL=$1
OUT=${2:-bench-results}
mkdir -p "$OUT"
PY=.venv/bin/python

run() {  # name, BENCH_PATCHES, extra bench.run arguments…
    local name=$1 patches=$2
    shift 2
    echo "== $name $(date +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
    BENCH_PATCHES=$patches $PY -m bench.run --database-url "$URL" --requests 300 --duration 20 \
        --nice -10 --json "$OUT/$name.json" "$@" > "$OUT/$name.log" 2>&1
    grep -E "^dataset|^\| [0-9f]|CPU ms" "$OUT/$name.log"
}

run baseline ""
$PY -m bench.experiments stats apply --database-url "$URL"
run stats ""
$PY -m bench.experiments stats drop --database-url "$URL"
run onequery onequery --app bench.patched_wsgi:app
run onequery-noping onequery,noping --app bench.patched_wsgi:app
$PY -m bench.experiments places build --database-url "$URL"
$PY -m bench.experiments check sasplace --database-url "$URL" | tail -1
run sasplace-noping sasplace,noping --app bench.patched_wsgi:app
$PY -m bench.experiments places drop --database-url "$URL"
