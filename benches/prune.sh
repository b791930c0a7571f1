#!/usr/bin/env bash
# Prune benchmark: `stowage cache prune` of a 20 GiB store to 10 GiB, against a shell LRU prune.
#
#   benches/prune.sh                        # ~1 minute; needs hyperfine
#   RUNS=9 TOTAL_GIB=20 BLOBS=4000 benches/prune.sh
#
# Each run gets a fresh synthetic store (benches/gen_store.py: sparse blobs
# with last uses spread over 30 days, and a content record per blob), then
# times, with hyperfine:
#   1. stowage cache prune --max-size 10GiB             target: a few seconds
#   2. the peer: find | sort by atime | awk to the bound | xargs rm, the
#      least-recently-used prune a shell script would do (it leaves the
#      records naming removed blobs behind, which stowage removes too)
# It checks that stowage leaves at most 10 GiB of blobs and no record naming
# a removed blob.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-5}
TOTAL_GIB=${TOTAL_GIB:-20}
BLOBS=${BLOBS:-4000}
WORK=${BENCH_DIR:-/tmp/stowage-bench}
STORE=$WORK/prune-store
BOUND=$((10 << 30))

for tool in hyperfine python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool is missing (apt-get install hyperfine python3)" >&2
        exit 1
    fi
done

cargo build --release -q
STOWAGE=$PWD/target/release/stowage
mkdir -p "$WORK"
GEN="python3 benches/gen_store.py $STORE $TOTAL_GIB $BLOBS"

# Once outside the timing: the bound holds and no record names a removed blob.
$GEN
STOWAGE_CACHE_DIR=$STORE "$STOWAGE" cache prune --max-size 10GiB
python3 - "$STORE" "$BOUND" <<'PY'
import glob, json, os, sys
store, bound = sys.argv[1], int(sys.argv[2])
blobs = {os.path.basename(p): os.path.getsize(p) for p in glob.glob(f"{store}/blobs/sha256/*")}
total = sum(blobs.values())
assert total <= bound, f"{total} bytes left, over the {bound} bound"
for path in glob.glob(f"{store}/meta/contents/*.json"):
    named = json.load(open(path))["digest"].split(":")[1]
    assert named in blobs, f"{path} names a removed blob"
print(f"bench: {len(blobs)} blobs ({total / 2**30:.2f} GiB) left, every record names one", file=sys.stderr)
PY

PEER="find $STORE/blobs/sha256 -type f -printf '%A@ %s %p\n' | sort -n \
 | awk -v bound=$BOUND '{ total += \$2; size[NR] = \$2; path[NR] = \$3 }
     END { for (i = 1; i <= NR && total > bound; i++) { print path[i]; total -= size[i] } }' \
 | xargs -r rm -f"

hyperfine --style basic --runs "$RUNS" --prepare "$GEN" --export-json "$WORK/prune.json" \
    -n "stowage cache prune" "STOWAGE_CACHE_DIR=$STORE $STOWAGE cache prune --max-size 10GiB" \
    -n "find | sort | xargs rm" "$PEER"

python3 - "$WORK/prune.json" "$TOTAL_GIB" "$BLOBS" <<'PY'
import json, sys
rows = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
ours, peer = rows["stowage cache prune"], rows["find | sort | xargs rm"]
print(f"\n{sys.argv[2]} GiB store of {sys.argv[3]} blobs pruned to 10 GiB")
print(f"{'prune':28} {'median s':>9} {'ratio':>8}")
print(f"{'stowage cache prune':28} {ours:9.3f} {ours / peer:7.2f}x")
print(f"{'find | sort | xargs rm':28} {peer:9.3f} {1:7.2f}x")
PY
