#!/usr/bin/env bash
# License benchmark: what concluding licenses from license files costs, on the JupyterLab venv.
#
#   benches/licenses.sh          # ~3 minutes on 2 cores; needs hyperfine and the test env's venv
#   RUNS=20 VENV=/path/to/venv benches/licenses.sh
#
# The venv is the one scripts/test-env.sh's e2e rig installs
# ($STOWAGE_TEST_DIR/libraries/jupyterlab-venv: JupyterLab 4.6 and its ~90
# distributions from PyPI, ~20 of which declare only "BSD License",
# "Apache Software License" or nothing clear). Timed with hyperfine:
#   1. `stowage build --dry-run` (walk, inventory with licenses, plan; the
#      work `stowage check` does before its policy) on the venv, warm
#   2. the same on a copy of the venv without its license files: the same
#      inventory with nothing to conclude (the peer)
#   3. a cold `stowage build` of the venv into an OCI layout (empty store)
# and prints the medians, 1 − 2 (the license files' cost) and its share of 3.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-10}
VENV=${VENV:-${STOWAGE_TEST_DIR:-/tmp/stowage-test}/libraries/jupyterlab-venv}
WORK=${BENCH_DIR:-/tmp/stowage-bench-licenses}

command -v hyperfine >/dev/null || { echo "bench: hyperfine missing (apt-get install hyperfine)" >&2; exit 1; }
[ -f "$VENV/pyvenv.cfg" ] || { echo "bench: no venv at $VENV (run scripts/test-env.sh and the library e2e tests)" >&2; exit 1; }

cargo build --release -q
STOWAGE=$PWD/target/release/stowage

rm -rf "$WORK"
mkdir -p "$WORK"
cp -a "$VENV" "$WORK/venv"
cp -a "$VENV" "$WORK/bare"
find "$WORK/bare" -path '*.dist-info*' \( -iname 'LICEN[CS]E*' -o -iname 'COPYING*' \) -type f -delete
for lib in venv bare; do
    printf 'base = "scratch"\n[app]\nlibrary = { source = "%s", target = "/opt/venv" }\ncommand = ["/opt/venv/bin/jupyter-lab"]\n' \
        "$WORK/$lib" >"$WORK/$lib.toml"
done

export STOWAGE_CACHE_DIR=$WORK/cache STOWAGE_STATE_DIR=$WORK/state
plan() { echo "$STOWAGE -q build --no-start-check --dry-run -f $WORK/$1.toml -o oci:$WORK/out:$1"; }
hyperfine --style basic --runs "$RUNS" --warmup 2 --export-json "$WORK/plan.json" \
    -n "dry-run, license files" "$(plan venv)" \
    -n "dry-run, no license files" "$(plan bare)"
hyperfine --style basic --runs "$((RUNS < 5 ? RUNS : 5))" --export-json "$WORK/cold.json" \
    --prepare "rm -rf $WORK/cache $WORK/out" \
    -n "cold build" "$STOWAGE -q build --no-start-check -f $WORK/venv.toml -o oci:$WORK/out:cold"

python3 - "$WORK/plan.json" "$WORK/cold.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
cold = json.load(open(sys.argv[2]))["results"][0]["median"]
with_files, without = results["dry-run, license files"], results["dry-run, no license files"]
cost = with_files["median"] - without["median"]
# CPU (user + system, means): on a busy machine the wall clock also counts waiting for a core.
cpu = lambda r: r["user"] + r["system"]
print(f"dry-run median: {with_files['median']*1000:.1f} ms with license files, {without['median']*1000:.1f} ms without")
print(f"dry-run CPU: {cpu(with_files)*1000:.1f} ms with license files, {cpu(without)*1000:.1f} ms without")
print(f"concluding licenses: {cost*1000:.1f} ms wall ({(cpu(with_files)-cpu(without))*1000:.1f} ms CPU) = {cost/cold*100:.2f}% of a cold build ({cold:.2f} s)")
PY
