#!/usr/bin/env bash
# What the secret scan costs: times `stowage build` of a generated ~200 MB
# app (or of a tree you name) with the scan on and with --no-secret-scan,
# and prints both medians and their ratio. The scan must cost at most 10% of
# build time.
#
#   benches/scan.sh [SIZE_MB | TREE]  (default 200; needs python3, and hyperfine,
#                                     which it installs with apt-get when run as root)
#
# TREE is a folder built as the image's library (`/opt/app`) as it is: a
# venv or a `pip install --target` folder of a real application, such as
# the JupyterLab venv the e2e rig builds
# ($STOWAGE_TEST_DIR/libraries/jupyterlab-venv).
#
# STOWAGE_BENCH_BASELINE=BIN also times BIN (another stowage binary, e.g. a
# release build of main) in the same rounds, scan and no-scan, and prints
# how the build with the scan and the scan's own cost (scan minus no-scan)
# changed from BIN to this tree's binary.
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
BASELINE=${STOWAGE_BENCH_BASELINE:-}
if [ -n "$BASELINE" ] && [ ! -x "$BASELINE" ]; then
    echo "scan.sh: STOWAGE_BENCH_BASELINE=$BASELINE is not an executable" >&2
    exit 1
fi

if [ -d "$SIZE_MB" ]; then
    TREE=$(cd "$SIZE_MB" && pwd)
    APP=$WORK/tree-$(printf '%s' "$TREE" | sha256sum | cut -c1-12)
    mkdir -p "$APP"
    printf '%s\n' 'base = "scratch"' 'image = "docker.io/acme/bench:scan"' '[app]' \
        "library = { source = \"$TREE\", target = \"/opt/app\" }" >"$APP/stowage.toml"
    echo "scan.sh: timing builds of $TREE ($(du -sh "$TREE" | cut -f1), $(find "$TREE" -type f | wc -l) files)" >&2
elif [[ "$SIZE_MB" =~ ^[0-9]+$ ]]; then
    APP=$WORK/app-$SIZE_MB
else
    echo "scan.sh: $SIZE_MB is neither a size in MB nor a folder" >&2
    exit 1
fi
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
build="-f $APP/stowage.toml -o oci:$OUT"
commands=(-n scan "STOWAGE_CACHE_DIR=$CACHE $BIN -q build $build"
    -n no-scan "STOWAGE_CACHE_DIR=$CACHE $BIN -q build --no-secret-scan $build")
if [ -n "$BASELINE" ]; then
    commands+=(-n baseline-scan "STOWAGE_CACHE_DIR=$CACHE $BASELINE -q build $build"
        -n baseline-no-scan "STOWAGE_CACHE_DIR=$CACHE $BASELINE -q build --no-secret-scan $build")
fi
# Rounds of one run each, every command in turn: on a machine shared with
# other work the load drifts over minutes, and interleaving spreads that
# drift over all commands instead of charging it to whichever ran later.
rm -f "$WORK"/round-*.json
for round in $(seq 1 "$RUNS"); do
    hyperfine --style none --runs 1 \
        --prepare "rm -rf $CACHE $OUT" \
        --export-json "$WORK/round-$round.json" \
        "${commands[@]}" >/dev/null
done

python3 - "$WORK" "$RUNS" <<'EOF'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
wall, cpu = {}, {}
for r in range(1, rounds + 1):
    for result in json.load(open(f"{work}/round-{r}.json"))["results"]:
        wall.setdefault(result["command"], []).append(result["times"][0])
        cpu.setdefault(result["command"], []).append(result["user"] + result["system"])
med = statistics.median
for name in wall:
    print(f"{name:16} wall median {med(wall[name]):7.3f} s (min {min(wall[name]):.3f}, max {max(wall[name]):.3f}),"
          f" cpu median {med(cpu[name]):7.3f} s  [{rounds} runs]")

def cost(prefix, who):
    w = med(wall[prefix + "scan"]) / med(wall[prefix + "no-scan"])
    c = med(cpu[prefix + "scan"]) / med(cpu[prefix + "no-scan"])
    print(f"{who}: wall-clock ratio {w:.3f} (scan costs {(w - 1) * 100:+.1f}% of build time); "
          f"cpu-time ratio {c:.3f} ({(c - 1) * 100:+.1f}%)")
    return w

ratio = cost("", "this tree")
if "baseline-scan" in wall:
    cost("baseline-", "baseline")
    for kind, times in (("wall", wall), ("cpu", cpu)):
        new, old = med(times["scan"]), med(times["baseline-scan"])
        new_cost = new - med(times["no-scan"])
        old_cost = old - med(times["baseline-no-scan"])
        print(f"{kind}: build with the scan {new:.3f} s vs baseline {old:.3f} s ({(new / old - 1) * 100:+.1f}%); "
              f"the scan's own cost {new_cost:+.3f} s vs baseline {old_cost:+.3f} s")
sys.exit(0 if ratio <= 1.10 else 1)
EOF
