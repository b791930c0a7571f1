#!/usr/bin/env bash
# Export policy benchmark: what `stowage check` costs a platform that asks
# before offering "Export", and what `--policy` adds to a build.
#
#   benches/check.sh                   # ~3 minutes on 2 cores, after the release build
#   RUNS=5 VENV=/path/to/venv benches/check.sh
#
# The library is the JupyterLab venv the e2e tests install (VENV, default
# $STOWAGE_TEST_DIR/libraries/jupyterlab-venv; made with `python3 -m venv`
# and `pip install jupyterlab` when missing). It times with hyperfine:
#   1. `stowage check --policy` on the warm venv (its files in the page
#      cache, the base in the store), against `stowage build --dry-run`
#      (the same plan and checks, without the policy) as the peer;
#      target: median <= 0.3 s.
#   2. a cold build (fresh store, fresh output) with and without `--policy`;
#      target: the policy adds <= 2% to the median.
# The policy is the typical research one (deny AGPL and SSPL, unknown =
# warn, a file rule, limits, destinations).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-10}
COLD_RUNS=${COLD_RUNS:-5}
WORK=${BENCH_DIR:-/tmp/stowage-bench-check}
VENV=${VENV:-${STOWAGE_TEST_DIR:-/tmp/stowage-test}/libraries/jupyterlab-venv}

command -v hyperfine >/dev/null || { echo "bench: hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
    echo "bench: making a JupyterLab venv in $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet jupyterlab
fi

cargo build --release -q
STOWAGE=$PWD/target/release/stowage

rm -rf "$WORK"
mkdir -p "$WORK/ws"
echo "print('hello')" >"$WORK/ws/notebook.py"
cat >"$WORK/stowage.toml" <<EOF
base = "scratch"
image = "oci:$WORK/out:lab"
[app]
library = { source = "$VENV", target = "/opt/venv" }
workspace = { source = "ws", target = "/home/user/work" }
EOF
cat >"$WORK/policy.toml" <<'EOF'
[licenses]
deny = ["AGPL-*", "SSPL-*"]
unknown = "warn"
[packages]
deny_channels = ["defaults"]
[files]
deny = ["**/*.lic", "**/libcuda.so*"]
[limits]
image = "20GiB"
layer = "4GiB"
workspace = "2GiB"
files = 2000000
[destinations]
repositories = ["docker.io/acme/*"]
tag = "^[a-z0-9][a-z0-9._-]{0,127}$"
EOF

export STOWAGE_CACHE_DIR=$WORK/cache STOWAGE_STATE_DIR=$WORK/state
cd "$WORK"
echo "bench: $(find "$VENV" -type f | wc -l) files in the venv" >&2
"$STOWAGE" -q check --policy policy.toml >/dev/null   # warm: page cache and store

hyperfine --runs "$RUNS" --warmup 2 --export-json check.json \
    -n check "$STOWAGE -q check --policy policy.toml" \
    -n dry-run "$STOWAGE -q build --dry-run"

cold="rm -rf $WORK/cache $WORK/out $WORK/state"
hyperfine --runs "$COLD_RUNS" --export-json build.json --prepare "$cold" \
    -n build "$STOWAGE -q build" \
    -n build-policy "$STOWAGE -q build --policy policy.toml"

python3 - <<'EOF'
import json, statistics
def medians(path):
    return {r["command"]: statistics.median(r["times"]) for r in json.load(open(path))["results"]}
check, build = medians("check.json"), medians("build.json")
print(f"check on the warm JupyterLab venv: median {check['check']:.3f} s "
      f"(build --dry-run {check['dry-run']:.3f} s, ratio {check['check'] / check['dry-run']:.2f}); target <= 0.3 s")
added = build["build-policy"] / build["build"] - 1
print(f"cold build: median {build['build']:.2f} s without, {build['build-policy']:.2f} s with --policy "
      f"({added * 100:+.1f}%); target <= +2%")
EOF
