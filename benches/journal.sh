#!/usr/bin/env bash
# Journal benchmark: what recording an export in PostgreSQL costs next to
# SQLite, and `exports list` over 100,000 PostgreSQL records.
#
#   benches/journal.sh          # ~2 minutes once built; needs hyperfine, psql and a PostgreSQL URL
#   RUNS=30 RECORDS=100000 BENCH_POSTGRES=postgresql://u:pw@host/db benches/journal.sh
#
# BENCH_POSTGRES (default: STOWAGE_TEST_POSTGRES, which scripts/test-env.sh
# exports) names a database the bench may create databases in; each part
# gets a fresh one, dropped at the end. STOWAGE_BIN runs another binary
# (default: a release build).
#   1. one export (`stowage copy` of a small OCI layout to another layout,
#      so the export itself takes milliseconds) with the journal in SQLite,
#      then in PostgreSQL: the difference of the medians is what recording
#      in PostgreSQL adds                                target <= 20 ms
#   2. `exports list --status failed --limit 50` and `--status ok --limit 50`
#      over RECORDS records in PostgreSQL, and the same over SQLite
#                                                        target < 0.5 s
# Medians from hyperfine; the ratio PG/SQLite is printed for each.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-20}
RECORDS=${RECORDS:-100000}
WORK=${BENCH_DIR:-/tmp/stowage-bench}/journal
ADMIN=${BENCH_POSTGRES:-${STOWAGE_TEST_POSTGRES:-}}

for tool in hyperfine psql python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool is missing (apt-get install hyperfine postgresql-client)" >&2
        exit 1
    fi
done
[ -n "$ADMIN" ] || {
    echo "bench: set BENCH_POSTGRES (or source /tmp/stowage-test/env for STOWAGE_TEST_POSTGRES)" >&2
    exit 1
}

if [ -z "${STOWAGE_BIN:-}" ]; then
    cargo build --release -q
    STOWAGE_BIN=$PWD/target/release/stowage
fi
STOWAGE=$STOWAGE_BIN

rm -rf "$WORK" && mkdir -p "$WORK"
BASE=${ADMIN%/*}
DATABASES=()
# fresh_database VAR: a new database, its URL in VAR (not a subshell, so the list of what to drop holds it).
fresh_database() {
    local name="stowage_bench_$$_${#DATABASES[@]}"
    psql -q "$ADMIN" -c "CREATE DATABASE $name" >/dev/null
    DATABASES+=("$name")
    printf -v "$1" '%s/%s' "$BASE" "$name"
}
cleanup() {
    local name
    for name in "${DATABASES[@]}"; do
        psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

export STOWAGE_CACHE_DIR=$WORK/cache STOWAGE_STATE_DIR=$WORK/state
# A small image in a layout: the export to time is a copy of it.
mkdir -p "$WORK/app/library"
head -c 65536 /dev/urandom >"$WORK/app/library/data.bin"
cat >"$WORK/app/stowage.toml" <<TOML
image = "bench/journal:1"
base = "scratch"
[app]
library = { source = "library", target = "/opt/app" }
TOML
"$STOWAGE" -q build -f "$WORK/app/stowage.toml" --no-start-check -o "oci:$WORK/src:1" >/dev/null

median() { # hyperfine JSON -> median seconds of each command, one line each
    python3 -c 'import json,sys; [print("%.4f" % r["median"]) for r in json.load(open(sys.argv[1]))["results"]]' "$1"
}

fresh_database PG
SQLITE="sqlite:$WORK/journal.sqlite3"
"$STOWAGE" --journal "$PG" exports list >/dev/null # creates the schema once, outside the timing
"$STOWAGE" --journal "$SQLITE" exports list >/dev/null
echo "bench: 1. one export recorded in SQLite, then in PostgreSQL ($RUNS runs each)" >&2
hyperfine -N -w 3 -r "$RUNS" --export-json "$WORK/record.json" \
    -n sqlite "$STOWAGE -q --journal $SQLITE copy oci:$WORK/src:1 oci:$WORK/dst-sqlite:1" \
    -n postgres "$STOWAGE -q --journal $PG copy oci:$WORK/src:1 oci:$WORK/dst-pg:1" >/dev/null
mapfile -t record < <(median "$WORK/record.json")

echo "bench: 2. filling a PostgreSQL and a SQLite journal with $RECORDS records" >&2
fresh_database LIST
"$STOWAGE" --journal "$LIST" exports list >/dev/null
FILL="INSERT INTO exports (time, kind, sources, destinations, digest, size, status, error, secret_names, notes)
      SELECT '2026-01-01T00:00:00Z', 'push', '[\"oci:/src\"]',
             '[{\"destination\":\"docker://registry.example.org/app:' || n || '\",\"kind\":\"registry\",\"status\":\"pushed\"}]',
             'sha256:' || lpad(to_hex(n), 64, '0'), 1000 + n,
             CASE WHEN n % 20 = 0 THEN 'failed' ELSE 'ok' END,
             CASE WHEN n % 20 = 0 THEN 'boom' END, '[]', '[]'
      FROM generate_series(1, $RECORDS) AS n"
psql -q "$LIST" -c "$FILL" -c "ANALYZE exports" >/dev/null
LIST_SQLITE="sqlite:$WORK/list.sqlite3"
"$STOWAGE" --journal "$LIST_SQLITE" exports list >/dev/null
python3 - "$WORK/list.sqlite3" "$RECORDS" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = ((f'[{{"destination":"docker://registry.example.org/app:{n}","kind":"registry","status":"pushed"}}]',
         f"sha256:{n:064x}", 1000 + n, "failed" if n % 20 == 0 else "ok", "boom" if n % 20 == 0 else None)
        for n in range(1, int(sys.argv[2]) + 1))
db.executemany("INSERT INTO exports (time, kind, sources, destinations, digest, size, status, error) "
               "VALUES ('2026-01-01T00:00:00Z', 'push', '[\"oci:/src\"]', ?, ?, ?, ?, ?)", rows)
db.commit()
PY
echo "bench: 2. exports list over $RECORDS records ($RUNS runs each)" >&2
hyperfine -N -w 2 -r "$RUNS" --export-json "$WORK/list.json" \
    -n pg-failed "$STOWAGE --json --journal $LIST exports list --status failed --limit 50" \
    -n pg-ok "$STOWAGE --json --journal $LIST exports list --status ok --limit 50" \
    -n sqlite-failed "$STOWAGE --json --journal $LIST_SQLITE exports list --status failed --limit 50" \
    -n sqlite-ok "$STOWAGE --json --journal $LIST_SQLITE exports list --status ok --limit 50" >/dev/null
mapfile -t list < <(median "$WORK/list.json")

python3 - "${record[@]}" "${list[@]}" <<'PY'
import sys
s, p, pf, po, sf, so = map(float, sys.argv[1:])
ms = lambda x: f"{x * 1000:.1f} ms"
print(f"export, journal in SQLite:      {ms(s)} (median)")
print(f"export, journal in PostgreSQL:  {ms(p)} (median)  PG/SQLite {p / s:.2f}")
print(f"recording in PostgreSQL adds:   {ms(p - s)}  (target <= 20 ms) {'ok' if p - s <= 0.020 else 'MISSED'}")
print(f"list --status failed --limit 50, PostgreSQL: {ms(pf)}  SQLite: {ms(sf)}  PG/SQLite {pf / sf:.2f}  (target < 500 ms) {'ok' if pf < 0.5 else 'MISSED'}")
print(f"list --status ok --limit 50,     PostgreSQL: {ms(po)}  SQLite: {ms(so)}  PG/SQLite {po / so:.2f}  (target < 500 ms) {'ok' if po < 0.5 else 'MISSED'}")
PY
