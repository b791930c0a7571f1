#!/usr/bin/env bash
# What the secret scan costs: times `stowage build` of a generated ~200 MB
# app with the scan on and with --no-secret-scan, and prints both medians
# and their ratio. The scan must cost at most 10% of build time.
#
#   benches/scan.sh [SIZE_MB]        (default 200; needs python3, and hyperfine,
#                                     which it installs with apt-get when run as root)
#
# The tree is a notebook-style app: a library of source-like text files
# (short lines, as in site-packages) and a workspace of notebooks
# and incompressible binary files, about 60% text and 40% binary by bytes,
# generated from a fixed seed so every run times the same bytes. Each timed
# run starts from an empty blob store and output folder, so neither a cached
# blob nor a layer cache can skip the work being measured. Wall-clock and
# CPU (user + system) medians are printed; on a busy machine the CPU
# figure is the steadier one.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZE_MB=${1:-200}
RUNS=${STOWAGE_BENCH_RUNS:-7}
WORK=${STOWAGE_BENCH_DIR:-/tmp/stowage-bench-scan}

if ! command -v hyperfine >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "scan.sh: installing hyperfine (Debian package)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hyperfine >/dev/null ||
            { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hyperfine >/dev/null; }
    fi
    command -v hyperfine >/dev/null || {
        echo "scan.sh: hyperfine is missing: sudo apt-get install hyperfine" >&2
        exit 1
    }
fi

cargo build --release --quiet
BIN=$PWD/target/release/stowage

APP=$WORK/app-$SIZE_MB
if [ ! -f "$APP/stowage.toml" ]; then
    rm -rf "$APP"
    mkdir -p "$APP"
    python3 - "$APP" "$SIZE_MB" <<'EOF'
import json, os, random, sys

root, size_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(4)
words = [
    "import", "def", "return", "self", "value", "data", "frame", "numpy",
    "plot", "result", "for", "in", "range", "if", "else", "None", "True",
    "config", "path", "open", "read", "write", "model", "train", "loss",
]
budget = size_mb * 1024 * 1024

def text_file(path, size):
    lines, n = [], 0
    while n < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
        lines.append(line)
        n += len(line) + 1
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return n

def notebook(path, size):
    cells, n = [], 0
    while n < size:
        src = [" ".join(rng.choice(words) for _ in range(8)) + "\n" for _ in range(10)]
        cells.append({"cell_type": "code", "source": src, "outputs": [], "metadata": {}})
        n += sum(len(s) for s in src) + 60
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"cells": cells, "nbformat": 4}, f, indent=1)
    return n

def binary_file(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))
    return size

written, i = 0, 0
while written < budget:
    kind = i % 5
    if kind in (0, 1):
        written += text_file(f"{root}/library/pkg{i % 40}/mod{i}.py", rng.randint(4_000, 120_000))
    elif kind == 2:
        written += notebook(f"{root}/workspace/nb/analysis{i}.ipynb", rng.randint(20_000, 300_000))
    else:
        written += binary_file(f"{root}/workspace/data/blob{i}.bin", rng.randint(50_000, 400_000))
    i += 1

with open(f"{root}/stowage.toml", "w") as f:
    f.write('base = "scratch"\nimage = "docker.io/acme/bench:scan"\n[app]\n'
            'library = { source = "library", target = "/opt/app" }\n'
            'workspace = { source = "workspace", target = "/home/user/work" }\n')
print(f"generated {written / 1048576:.0f} MiB in {i} files under {root}", file=sys.stderr)
EOF
fi

CACHE=$WORK/cache
OUT=$WORK/out
export STOWAGE_STATE_DIR=$WORK/state
build="STOWAGE_CACHE_DIR=$CACHE $BIN -q build -f $APP/stowage.toml -o oci:$OUT"
# Rounds of one run each, scan and no-scan in turn: on a machine shared with
# other work the load drifts over minutes, and interleaving spreads that
# drift over both commands instead of charging it to whichever ran later.
rm -f "$WORK"/round-*.json
for round in $(seq 1 "$RUNS"); do
    hyperfine --style none --runs 1 \
        --prepare "rm -rf $CACHE $OUT" \
        --export-json "$WORK/round-$round.json" \
        -n scan "$build" \
        -n no-scan "$build --no-secret-scan" >/dev/null
done

python3 - "$WORK" "$RUNS" <<'EOF'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
wall = {"scan": [], "no-scan": []}
cpu = {"scan": [], "no-scan": []}
for r in range(1, rounds + 1):
    for result in json.load(open(f"{work}/round-{r}.json"))["results"]:
        wall[result["command"]].append(result["times"][0])
        cpu[result["command"]].append(result["user"] + result["system"])
med = statistics.median
for name in ("scan", "no-scan"):
    print(f"{name:8} wall median {med(wall[name]):7.3f} s (min {min(wall[name]):.3f}, max {max(wall[name]):.3f}),"
          f" cpu median {med(cpu[name]):7.3f} s  [{rounds} runs]")
ratio = med(wall["scan"]) / med(wall["no-scan"])
cpu_ratio = med(cpu["scan"]) / med(cpu["no-scan"])
print(f"wall-clock ratio {ratio:.3f} (scan costs {(ratio - 1) * 100:+.1f}% of build time); "
      f"cpu-time ratio {cpu_ratio:.3f} ({(cpu_ratio - 1) * 100:+.1f}%)")
sys.exit(0 if ratio <= 1.10 else 1)
EOF
