#!/usr/bin/env bash
# Cache benchmark: what the content cache and --cache-repo save, on the bench tree.
#
#   benches/cache.sh                  # ~5 minutes on 2 cores; needs hyperfine and docker-registry
#   RUNS=3 SIZE_MB=200 benches/cache.sh
#
# On the synthetic app of benches/build.sh (same generator, same folder, so
# the two benches share it), times with hyperfine:
#   1. cold build into an OCI layout (empty store)
#   2. fresh checkout on the same machine: the app copied to another path
#      (new mtimes and inodes), the layer (fingerprint) cache emptied, the
#      store kept                                          target <= 25% of 1
#   3. first runner: cold build + push to a fresh repository of a local
#      docker-registry, with a fresh --cache-repo
#   4. fresh runner: empty store, the app at another path, build + push to a
#      fresh repository with the shared --cache-repo      target <= 30% of 3
# The command the spec names is a static ELF that exits 0, so the start check runs as in a real build.
# It checks that 4 gives the digest 3 gives and uploads no layer blob (the
# registry's access log), and that 2 gives the digest of 1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-5}
SIZE_MB=${SIZE_MB:-500}
WORK=${BENCH_DIR:-/tmp/stowage-bench}

for tool in hyperfine docker-registry python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool is missing (apt-get install hyperfine docker-registry)" >&2
        exit 1
    fi
done

cargo build --release -q
STOWAGE=$PWD/target/release/stowage

mkdir -p "$WORK"
APP=$WORK/app
if [ ! -f "$APP/.generated-v3-$SIZE_MB" ]; then
    rm -rf "$APP"
    echo "bench: generating a ${SIZE_MB} MB app in $APP" >&2
    python3 benches/gen_app.py "$APP" "$SIZE_MB"
fi
# The command the spec names, for the start check (a tree generated before it had none).
[ -f "$APP/library/run" ] || python3 benches/exit0-elf.py "$APP/library/run"
echo "bench: app is $(du -sh --apparent-size "$APP/library" | cut -f1) in $(find "$APP/library" -type f | wc -l) files" >&2

# A registry of our own, with its access log, on a free loopback port.
REG_DIR=$WORK/cache-registry
rm -rf "$REG_DIR" && mkdir -p "$REG_DIR"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat >"$REG_DIR/config.yml" <<YML
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $REG_DIR/storage
  delete:
    enabled: true
http:
  addr: $REG
  secret: stowage-bench
YML
env -u REGISTRY_AUTH_FILE docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/registry.log" 2>&1 &
REG_PID=$!
trap 'kill "$REG_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break
    sleep 0.1
done

# Each timed run gets fresh names from a counter (hyperfine runs one fixed command line).
N=$WORK/cache-bench-run
echo 0 >"$N"
next_run="echo \$(( \$(cat $N) + 1 )) > $N"

# 1 and 2: the store in $WORK/cache-c.
cold_prep="rm -rf $WORK/cache-c $WORK/out-c"
cold_cmd="STOWAGE_CACHE_DIR=$WORK/cache-c $STOWAGE -q build -f $APP/stowage.toml -o oci:$WORK/out-c:bench"
checkout_prep="rm -rf $WORK/checkout-2 $WORK/out-c $WORK/cache-c/meta/layers && cp -r $APP $WORK/checkout-2"
checkout_cmd="STOWAGE_CACHE_DIR=$WORK/cache-c $STOWAGE -q build -f $WORK/checkout-2/stowage.toml -o oci:$WORK/out-c:bench"

# 3 and 4: pushes to $REG; runner 4 shares the cache repository runner 3 filled once.
runner1_prep="$next_run && rm -rf $WORK/cache-r1"
runner1_cmd="STOWAGE_CACHE_DIR=$WORK/cache-r1 $STOWAGE -q build -f $APP/stowage.toml -o $REG/runner-one-\$(cat $N):1 --cache-repo $REG/cache-cold-\$(cat $N)"
runner2_prep="$next_run && rm -rf $WORK/cache-r2 $WORK/runner-2 && cp -r $APP $WORK/runner-2"
runner2_cmd="STOWAGE_CACHE_DIR=$WORK/cache-r2 $STOWAGE -q build -f $WORK/runner-2/stowage.toml -o $REG/runner-two-\$(cat $N):1 --cache-repo $REG/shared-cache"

# Fill the store for 2 and the shared cache repository for 4, and keep the digests.
eval "$cold_prep"
digest_cold=$(eval "$cold_cmd")
rm -rf "$WORK/cache-r1"
digest_runner1=$(STOWAGE_CACHE_DIR=$WORK/cache-r1 $STOWAGE -q build -f "$APP/stowage.toml" -o "$REG/runner-one-fill:1" --cache-repo "$REG/shared-cache")

hyperfine --style basic --runs "$RUNS" --export-json "$WORK/cache.json" \
    --prepare "$cold_prep" --prepare "$checkout_prep" --prepare "$runner1_prep" --prepare "$runner2_prep" \
    -n "cold build" "$cold_cmd" \
    -n "fresh checkout" "$checkout_cmd" \
    -n "first runner: cold build + push" "$runner1_cmd" \
    -n "fresh runner: --cache-repo build + push" "$runner2_cmd"

# The checks, on one more run of each reuse.
eval "$checkout_prep"
digest_checkout=$(eval "$checkout_cmd")
eval "$runner2_prep"
mark=$(wc -l <"$REG_DIR/registry.log")
digest_runner2=$(eval "$runner2_cmd")
status=0
if [ "$digest_checkout" != "$digest_cold" ]; then
    echo "bench: error: the fresh checkout built ${digest_checkout#*@}, the cold build ${digest_cold#*@}" >&2
    status=1
fi
if [ "${digest_runner2#*@}" != "${digest_runner1#*@}" ]; then
    echo "bench: error: the fresh runner built ${digest_runner2#*@}, the first runner ${digest_runner1#*@}" >&2
    status=1
fi
uploaded=$(python3 - "$REG" "runner-two-$(cat "$N")" "$REG_DIR/registry.log" "$mark" <<'PY'
import json, re, sys, urllib.request
reg, repo, log, mark = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
req = urllib.request.Request(f"http://{reg}/v2/{repo}/manifests/1",
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
layers = {l["digest"] for l in json.load(urllib.request.urlopen(req))["layers"]}
lines = open(log, errors="replace").read().splitlines()[mark:]
ups = [l for l in lines if re.search(r'"(PUT|PATCH) /v2/[^ ]*/blobs/uploads/', l)]
print(sum(1 for l in ups if any(d in l for d in layers)))
PY
)
if [ "$uploaded" != 0 ]; then
    echo "bench: error: the fresh runner uploaded $uploaded layer blob(s)" >&2
    status=1
fi
echo "bench: fresh checkout digest = cold digest: ${digest_cold#*@}" >&2
echo "bench: fresh runner digest = first runner digest: ${digest_runner1#*@}; layer blobs uploaded by the fresh runner: $uploaded" >&2

python3 - "$WORK" <<'PY'
import json, sys
rows = {r["command"]: r["median"] for r in json.load(open(f"{sys.argv[1]}/cache.json"))["results"]}
cold, checkout = rows["cold build"], rows["fresh checkout"]
first, fresh = rows["first runner: cold build + push"], rows["fresh runner: --cache-repo build + push"]
print()
print(f"{'scenario':42} {'median s':>9} {'ratio':>8} {'target':>8}")
print(f"{'cold build':42} {cold:9.3f}")
print(f"{'fresh checkout (store kept)':42} {checkout:9.3f} {checkout / cold:8.0%} {'<= 25%':>8}")
print(f"{'first runner: cold build + push':42} {first:9.3f}")
print(f"{'fresh runner: --cache-repo build + push':42} {fresh:9.3f} {fresh / first:8.0%} {'<= 30%':>8}")
PY
exit $status
