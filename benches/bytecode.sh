#!/usr/bin/env bash
# Bytecode benchmark: what making each .pyc valid in the image costs a cold build.
#
#   benches/bytecode.sh                     # ~10 minutes on 2 cores (two release builds)
#   RUNS=5 BASE_BIN=/path/to/stowage-main benches/bytecode.sh
#
# Times with hyperfine a cold build (fresh store, fresh output) of a
# JupyterLab venv (pip's usual timestamp-based bytecode: ~4,000 .pyc files)
# into an OCI layout, by this tree's stowage and by the peer: stowage built
# from `git merge-base HEAD main` (or BASE_BIN), the same pipeline without the
# rewrite. Reports both medians and their ratio; the target is <= 1.02.
# The wheels come from $STOWAGE_TEST_DIR/pypi-wheels when the test rig has
# them (offline), else from PyPI.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-7}
WORK=${BENCH_DIR:-/tmp/stowage-bench-bytecode}
WHEELS=${STOWAGE_TEST_DIR:-/tmp/stowage-test}/pypi-wheels
mkdir -p "$WORK"

command -v hyperfine >/dev/null || { echo "bench: hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }

cargo build --release -q
STOWAGE=$PWD/target/release/stowage
if [ -n "${BASE_BIN:-}" ]; then
    PEER=$BASE_BIN
else
    base=$(git merge-base HEAD main)
    if [ ! -d "$WORK/peer-src" ]; then
        git worktree add --detach "$WORK/peer-src" "$base" >/dev/null
    fi
    git -C "$WORK/peer-src" checkout -q --detach "$base"
    (cd "$WORK/peer-src" && CARGO_TARGET_DIR=$WORK/peer-target cargo build --release -q)
    PEER=$WORK/peer-target/release/stowage
fi

VENV=$WORK/jupyterlab-venv
if [ ! -x "$VENV/bin/jupyter-lab" ]; then
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    if [ -d "$WHEELS" ]; then
        env -u SOURCE_DATE_EPOCH "$VENV/bin/python" -m pip install -q --no-index --find-links "$WHEELS" jupyterlab
    else
        env -u SOURCE_DATE_EPOCH "$VENV/bin/python" -m pip install -q jupyterlab
    fi
fi
echo "bench: $(find "$VENV" -name '*.pyc' | wc -l) .pyc files, $(du -sh "$VENV" | cut -f1)" >&2

cat >"$WORK/stowage.toml" <<TOML
base = "scratch"
[app]
library = { source = "$VENV", target = "/opt/venv" }
command = ["/opt/venv/bin/jupyter-lab"]
TOML

build() { # $1: binary
    echo "STOWAGE_CACHE_DIR=$WORK/cache $1 build -q --no-start-check -f $WORK/stowage.toml -o oci:$WORK/out:1"
}
hyperfine --runs "$RUNS" --warmup 1 \
    --prepare "rm -rf $WORK/cache $WORK/out" \
    --export-json "$WORK/times.json" \
    -n rewrite "$(build "$STOWAGE")" \
    -n peer "$(build "$PEER")" >&2

python3 - "$WORK/times.json" <<'PY'
import json, statistics, sys
results = {r["command"]: statistics.median(r["times"]) for r in json.load(open(sys.argv[1]))["results"]}
ratio = results["rewrite"] / results["peer"]
print(f"cold JupyterLab venv build: with the .pyc rewrite {results['rewrite']:.2f} s, peer {results['peer']:.2f} s (medians), ratio {ratio:.3f} (target <= 1.02)")
sys.exit(0 if ratio <= 1.02 else 1)
PY
