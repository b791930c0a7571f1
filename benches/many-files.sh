#!/usr/bin/env bash
# Many-files benchmark: the per-file cost of stowage on a tree of small files, as conda envs and venvs are.
#
#   benches/many-files.sh               # run by benches/build.sh too; ~5 minutes on 2 cores
#   RUNS=3 FILES=300000 MILLION=0 benches/many-files.sh
#   STOWAGE_BIN=target/release/stowage benches/many-files.sh   # no cargo build
#
# It generates a deterministic tree of FILES (default 300,000) files of a few
# hundred bytes, in packages under lib/python3.11/site-packages (1,000 files
# a package, 100 a folder, each package with a pip dist-info whose RECORD
# lists its files: benches/dist_info.py), and times with hyperfine:
#   stowage cold build (fresh cache and output each run)
#   tar -cf - DIR | pigz | sha256sum          (the pipeline limit, same tree)
#   stowage rebuild with nothing changed, against find stat-ing the same
#   tree (one find, and two finds over halves of it at once: the floor on two cores)
# then reports medians, the ratio against the pipeline of the same run, and
# peak RSS (/usr/bin/time -v). With MILLION=1 (the default) it also builds a
# tree of 1,000,000 tiny files once and reports that build's peak RSS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-5}
FILES=${FILES:-300000}
MILLION=${MILLION:-1}
WORK=${BENCH_DIR:-/tmp/stowage-bench}

for tool in hyperfine pigz /usr/bin/time python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench: missing $tool (benches/build.sh installs it as root)" >&2
        exit 1
    }
done
# STOWAGE_BIN: the stowage to measure (default: cargo build --release).
if [ -n "${STOWAGE_BIN:-}" ]; then
    STOWAGE=$STOWAGE_BIN
else
    cargo build --release -q
    STOWAGE=$PWD/target/release/stowage
fi

# generate DIR FILES BYTES: FILES files of about BYTES bytes, and a stowage.toml
# whose command is a static ELF that exits 0 (the start check can follow it on scratch).
generate() {
    python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys
sys.path.insert(0, "benches")
from dist_info import write_dist_info
root, files, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20261130)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(2000)]
site = os.path.join(root, "library", "lib", "python3.11", "site-packages")
package = []
for i in range(files):
    name = f"pkg{i // 1000:04d}"
    rel = os.path.join(name, f"sub{i % 1000 // 100}", f"m{i % 100:03d}.py")
    if i % 100 == 0:
        os.makedirs(os.path.dirname(os.path.join(site, rel)), exist_ok=True)
    if size > 16:
        n = rng.randint(size // 3, size * 5 // 3)
        body = b" ".join(rng.choice(words) for _ in range(n // 6 + 1))[:n] + b"\n"
    else:
        body = b"x = %d\n" % i
    with open(os.path.join(site, rel), "wb") as f:
        f.write(body)
    package.append(rel)
    if i % 1000 == 999 or i == files - 1:
        write_dist_info(site, name, package)
        package = []
with open(os.path.join(root, "stowage.toml"), "w") as f:
    f.write('base = "scratch"\n[app]\nlibrary = { source = "library", target = "/opt/app" }\n'
            'command = ["/opt/app/run"]\n')
PY
    python3 benches/exit0-elf.py "$1/library/run"
    touch "$1/.generated-v2-$2-$3"
}

APP=$WORK/many-$FILES
if [ ! -f "$APP/.generated-v2-$FILES-350" ]; then
    rm -rf "$APP"
    echo "bench: generating $FILES small files in $APP" >&2
    generate "$APP" "$FILES" 350
fi
LIB=$APP/library
echo "bench: many-files tree is $(du -sh --apparent-size "$LIB" | cut -f1) in $(find "$LIB" -type f | wc -l) files" >&2

export STOWAGE_CACHE_DIR=$WORK/many-cache
cold="rm -rf $WORK/many-cache $WORK/many-out"
build="$STOWAGE -q build -f $APP/stowage.toml -o oci:$WORK/many-out:bench"
pipeline="tar -cf - -C $LIB . | pigz | sha256sum"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/many.json" \
    --prepare "$cold" --prepare ":" \
    -n "stowage cold" "$build" \
    -n "tar|pigz|sha256sum" "$pipeline"
$build >/dev/null
# The no-op's peers: find stat-ing every file of the tree, alone and as two
# finds over halves of the packages at once (the floor on two cores).
SITE=$LIB/lib/python3.11/site-packages
stat_all="find $LIB -printf '%s %T@ %i\\n' >/dev/null"
stat_halves="cd $SITE && { find pkg???[02468] pkg???[02468]-* -printf '%s %T@ %i\\n' >/dev/null & find pkg???[13579] pkg???[13579]-* -printf '%s %T@ %i\\n' >/dev/null; wait; }"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/many-rebuild.json" \
    -n "rebuild, nothing changed" "$build" \
    -n "find -printf (stat all)" "$stat_all" \
    -n "two finds on halves" "$stat_halves"

peak() { /usr/bin/time -v bash -c "$1" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
eval "$cold"
rss_cold=$(peak "$build")
rss_rebuild=$(peak "$build")
rss_pipeline=$(peak "$pipeline")

rss_million=""
if [ "$MILLION" = 1 ]; then
    BIG=$WORK/many-1000000
    if [ ! -f "$BIG/.generated-v2-1000000-0" ]; then
        rm -rf "$BIG"
        echo "bench: generating 1,000,000 tiny files in $BIG" >&2
        generate "$BIG" 1000000 0
    fi
    rm -rf "$WORK/million-cache" "$WORK/million-out"
    rss_million=$(peak "STOWAGE_CACHE_DIR=$WORK/million-cache $STOWAGE -q build -f $BIG/stowage.toml -o oci:$WORK/million-out:bench")
    rm -rf "$WORK/million-cache" "$WORK/million-out"
fi

python3 - "$WORK" "$FILES" <<PY
import json, sys
work, files = sys.argv[1], int(sys.argv[2])
rows = {r["command"]: r for f in ("many.json", "many-rebuild.json") for r in json.load(open(f"{work}/{f}"))["results"]}
base = rows["tar|pigz|sha256sum"]["median"]
rss = {"stowage cold": "$rss_cold", "tar|pigz|sha256sum": "$rss_pipeline", "rebuild, nothing changed": "$rss_rebuild"}
print()
print(f"{files} small files")
print(f"{'command':28} {'median s':>9} {'vs pipeline':>12} {'peak RSS MiB':>13}")
for name, r in rows.items():
    mem = f"{int(rss[name]) / 1024:13.1f}" if rss.get(name, "").isdigit() else f"{'':>13}"
    print(f"{name:28} {r['median']:9.3f} {r['median'] / base:11.2f}x {mem}")
cold = rows["stowage cold"]["median"]
noop = rows["rebuild, nothing changed"]["median"]
print(f"per file: cold {cold / files * 1e6:.1f} us, no-op {noop / files * 1e6:.1f} us")
halves = noop / rows['two finds on halves']['median']
print(f"no-op vs find: {noop / rows['find -printf (stat all)']['median']:.2f}x one find, "
      f"{halves:.2f}x two finds on halves at once (target: at most 1.2x)")
if "$rss_million".isdigit():
    print(f"1,000,000 tiny files, cold build: peak RSS {int('$rss_million') / 1024:.1f} MiB")
PY
