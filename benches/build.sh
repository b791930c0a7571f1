#!/usr/bin/env bash
# Build benchmark: stowage against the pipeline limit and its peers, in one run.
#
#   sudo benches/build.sh            # as root (apt-get, buildah); ~10 minutes on 2 cores
#   RUNS=3 SIZE_MB=200 benches/build.sh
#
# It generates a deterministic synthetic app (SIZE_MB, default 500, in about
# 20,000 files: half compressible text, half random bytes, some large files),
# then times with hyperfine, cold each run (fresh stowage cache, fresh outputs):
#   1. stowage build -> oci: layout
#      tar -cf - DIR | pigz | sha256sum      (the pipeline limit: read, compress, hash)
#      umoci insert + umoci config           (into an empty OCI layout)
#      buildah copy + buildah commit         (from scratch, vfs storage)
#   2. stowage rebuild with nothing changed, and after changing one file
# and reports medians, ratios against the pipeline, output sizes (equal work
# means comparable output), and each command's peak RSS (/usr/bin/time -v).
# Then benches/many-files.sh: 300,000 small files (and peak RSS at 1,000,000).
# Push benchmarks are in benches/push.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-5}
SIZE_MB=${SIZE_MB:-500}
WORK=${BENCH_DIR:-/tmp/stowage-bench}

need=()
for tool in hyperfine pigz umoci buildah /usr/bin/time python3; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench: missing ${need[*]}; run as root to install them" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        hyperfine pigz umoci buildah time >/dev/null
fi

cargo build --release -q
STOWAGE=$PWD/target/release/stowage

mkdir -p "$WORK"
APP=$WORK/app
if [ ! -f "$APP/.generated-v3-$SIZE_MB" ]; then
    rm -rf "$APP"
    echo "bench: generating a ${SIZE_MB} MB app in $APP" >&2
    python3 benches/gen_app.py "$APP" "$SIZE_MB"
fi
LIB=$APP/library
# The command the spec names, for the start check (a tree generated before it had none).
[ -f "$LIB/run" ] || python3 benches/exit0-elf.py "$LIB/run"
echo "bench: app is $(du -sh --apparent-size "$LIB" | cut -f1) in $(find "$LIB" -type f | wc -l) files" >&2

export STOWAGE_CACHE_DIR=$WORK/cache
UMOCI=$WORK/umoci
export BUILDAH_ROOT=$WORK/buildah
buildah_storage=(--root "$BUILDAH_ROOT/root" --runroot "$BUILDAH_ROOT/run" --storage-driver vfs)

cold_stowage="rm -rf $WORK/cache $WORK/out-stowage"
stowage_cmd="$STOWAGE -q build -f $APP/stowage.toml -o oci:$WORK/out-stowage:bench"
pipeline_cmd="tar -cf - -C $LIB . | pigz | sha256sum"
umoci_prep="rm -rf $UMOCI && umoci init --layout $UMOCI && umoci new --image $UMOCI:bench"
umoci_cmd="umoci insert --rootless --image $UMOCI:bench $LIB /opt/app && umoci config --image $UMOCI:bench --config.cmd /opt/app/run"
buildah_prep="buildah ${buildah_storage[*]} rm --all >/dev/null 2>&1 || true; rm -rf $WORK/out-buildah"
buildah_cmd="c=\$(buildah ${buildah_storage[*]} from scratch) && buildah ${buildah_storage[*]} copy \$c $LIB /opt/app >/dev/null && buildah ${buildah_storage[*]} commit -q \$c oci:$WORK/out-buildah:bench >/dev/null && buildah ${buildah_storage[*]} rm \$c >/dev/null"

# hyperfine takes one --prepare per command, in command order.
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/build.json" \
    --prepare "$cold_stowage" --prepare ":" --prepare "$umoci_prep" --prepare "$buildah_prep" \
    -n stowage "$stowage_cmd" \
    -n "tar|pigz|sha256sum" "$pipeline_cmd" \
    -n umoci "$umoci_cmd" \
    -n buildah "$buildah_cmd"

# The bytes must not depend on the thread count: on this tree, a deflate
# state reused across chunks once made digests differ run to run.
digest_default=$(eval "$cold_stowage" && $stowage_cmd)
digest_one=$(rm -rf "$WORK/cache-1" "$WORK/out-1" &&
    STOWAGE_CACHE_DIR=$WORK/cache-1 $STOWAGE -q build --threads 1 -f "$APP/stowage.toml" -o "oci:$WORK/out-1:bench")
rm -rf "$WORK/cache-1" "$WORK/out-1"
if [ "$digest_default" != "$digest_one" ]; then
    echo "bench: error: --threads 1 built $digest_one, the default $digest_default" >&2
    exit 1
fi
echo "bench: same digest with 1 thread and the default: $digest_default" >&2

# Warm rebuilds: the cache is filled by the last stowage run above.
$STOWAGE -q build -f "$APP/stowage.toml" -o "oci:$WORK/out-stowage:bench" >/dev/null
one_file=$LIB/lib/python3.11/site-packages/pkg07/mod3/f00007.py
# The plan alone (walk, inventory, package split; no byte read): an upper
# bound of what the inventory and the split add to a cold build.
plan_cmd="$STOWAGE -q build --dry-run -f $APP/stowage.toml -o oci:$WORK/out-stowage:bench"
hyperfine --style basic --runs "$RUNS" --export-json "$WORK/rebuild.json" \
    --prepare ":" --prepare "echo \$RANDOM >> $one_file" --prepare ":" \
    -n "rebuild, nothing changed" "$stowage_cmd" \
    -n "rebuild, one file changed" "$stowage_cmd" \
    -n "plan only (--dry-run)" "$plan_cmd"

peak() { /usr/bin/time -v bash -c "$1" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
eval "$cold_stowage"
rss_stowage=$(peak "$stowage_cmd")
rss_pipeline=$(peak "$pipeline_cmd")
eval "$umoci_prep" >/dev/null
rss_umoci=$(peak "$umoci_cmd")
eval "$buildah_prep"
rss_buildah=$(peak "$buildah_cmd")
rss_rebuild=$(peak "$stowage_cmd")

size_of_layers() { # the compressed layer blobs an OCI layout holds, in bytes
    python3 - "$1" <<'PY'
import json, os, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
total = 0
for m in idx["manifests"]:
    man = json.load(open(os.path.join(d, "blobs", *m["digest"].split(":"))))
    total += sum(l["size"] for l in man.get("layers", []))
print(total)
PY
}
size_stowage=$(size_of_layers "$WORK/out-stowage")
size_pipeline=$(tar -cf - -C "$LIB" . | pigz | wc -c)
size_umoci=$(size_of_layers "$UMOCI")
size_buildah=$(size_of_layers "$WORK/out-buildah")

python3 - "$WORK" <<PY
import json, sys
work = sys.argv[1]
rows = {r["command"]: r for f in ("build.json", "rebuild.json") for r in json.load(open(f"{work}/{f}"))["results"]}
base = rows["tar|pigz|sha256sum"]["median"]
size = {"stowage": $size_stowage, "tar|pigz|sha256sum": $size_pipeline, "umoci": $size_umoci, "buildah": $size_buildah}
rss = {"stowage": "$rss_stowage", "tar|pigz|sha256sum": "$rss_pipeline", "umoci": "$rss_umoci",
       "buildah": "$rss_buildah", "rebuild, nothing changed": "$rss_rebuild"}
print()
print(f"{'command':28} {'median s':>9} {'vs pipeline':>12} {'output MiB':>11} {'peak RSS MiB':>13}")
for name, r in rows.items():
    out = f"{size[name] / 2**20:11.1f}" if name in size else f"{'':>11}"
    mem = f"{int(rss[name]) / 1024:13.1f}" if rss.get(name, "").isdigit() else f"{'':>13}"
    print(f"{name:28} {r['median']:9.3f} {r['median'] / base:11.2f}x {out} {mem}")
full = rows["stowage"]["median"]
print()
print(f"one file changed: {rows['rebuild, one file changed']['median'] / full:.0%} of a full build")
print(f"plan (walk + inventory + split): {rows['plan only (--dry-run)']['median'] / full:.1%} of a cold build")
PY

# A real library: the JupyterLab venv the tests install (scripts/test.sh
# builds it under $STOWAGE_TEST_DIR), or VENV=DIR. Cold build against the plan alone.
VENV=${VENV:-${STOWAGE_TEST_DIR:-/tmp/stowage-test}/libraries/jupyterlab-venv}
if [ -f "$VENV/pyvenv.cfg" ]; then
    mkdir -p "$WORK/venv-app"
    printf 'base = "scratch"\n[app]\nlibrary = { source = "%s", target = "/opt/venv" }\ncommand = ["/opt/venv/bin/jupyter-lab"]\n' "$VENV" >"$WORK/venv-app/stowage.toml"
    # On scratch the venv's python is missing, so the start check would fail the build.
    venv_build="$STOWAGE -q build --no-start-check -f $WORK/venv-app/stowage.toml -o oci:$WORK/out-venv:bench"
    hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/venv.json" \
        --prepare "rm -rf $WORK/cache $WORK/out-venv" --prepare ":" \
        -n "venv: stowage cold" "$venv_build" \
        -n "venv: plan only (--dry-run)" "$STOWAGE -q build --dry-run -f $WORK/venv-app/stowage.toml -o oci:$WORK/out-venv:bench"
    python3 - "$WORK" <<'PY'
import json, sys
rows = {r["command"]: r["median"] for r in json.load(open(f"{sys.argv[1]}/venv.json"))["results"]}
print(f"venv: cold {rows['venv: stowage cold']:.3f} s, plan {rows['venv: plan only (--dry-run)']:.3f} s = "
      f"{rows['venv: plan only (--dry-run)'] / rows['venv: stowage cold']:.1%} of a cold build")
PY
else
    echo "bench: no JupyterLab venv at $VENV (run the tests once, or set VENV=DIR); skipping the venv rows" >&2
fi

# The per-file cost: a tree of many small files, and peak RSS at a million.
RUNS=$RUNS BENCH_DIR=$WORK benches/many-files.sh
