#!/usr/bin/env bash
# Two measurement passes back to back (the README's runs A and B), after checking that the
# sas_place projection is what the application's rules compute.
#   bench/variants.sh DATABASE_URL [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
URL=$1
OUT=${2:-bench-results}
mkdir -p "$OUT"
PY=.venv/bin/python

$PY -m bench.experiments check --database-url "$URL"
for pass in A B; do
    echo "== $pass $(date +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
    $PY -m bench.run --database-url "$URL" --requests 300 --concurrency 8 --nice -10 \
        --json "$OUT/$pass.json" > "$OUT/$pass.log" 2>&1
    grep -E "^dataset|^\| [0-9f]|CPU ms" "$OUT/$pass.log"
done
