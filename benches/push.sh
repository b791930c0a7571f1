#!/usr/bin/env bash
# Push benchmark: stowage against skopeo, to a local registry, in one run.
#
#   sudo benches/push.sh                 # as root (apt-get); ~5 minutes on 2 cores
#   RUNS=10 SIZE_MB=200 BIG_MB=2048 benches/push.sh
#   SKIP_BIG=1 benches/push.sh           # only the timing part
#
# It starts its own `docker-registry` (Debian's distribution 2.8) on a free
# loopback port with its storage under $BENCH_DIR (default
# /tmp/stowage-push-bench), generates a deterministic app of SIZE_MB
# (default 200: 3/4 random bytes, 1/4 text, in a few hundred files), builds
# it once with `stowage build` into an OCI layout (three gzip layers), then:
#
#  1. times with hyperfine, in one run, each iteration into an empty
#     registry (its storage is deleted by --prepare) and a repository name
#     never used before (a counter bumped by --prepare), so nothing is
#     mounted or skipped and every byte is uploaded:
#       stowage push oci:LAYOUT:bench 127.0.0.1:PORT/bench/aN:1
#       skopeo copy --dest-tls-verify=false oci:LAYOUT:bench docker://127.0.0.1:PORT/bench/bN:1
#     and prints both medians and their ratio;
#  2. builds an image with one BIG_MB layer (default 2048; random bytes from
#     /dev/urandom, so the layer is as big as the file) and measures the peak
#     RSS of `stowage push` of it with /usr/bin/time -v (skopeo's too, for
#     reference), failing when stowage's is above RSS_LIMIT_MB (default 64):
#     memory must not grow with the layer.
#
# Both tools push from the same layout, so they send the same bytes: the
# blobs are already compressed, neither recompresses.
# STOWAGE_BIN: the stowage to measure (default: cargo build --release).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-10}
SIZE_MB=${SIZE_MB:-200}
BIG_MB=${BIG_MB:-2048}
RSS_LIMIT_MB=${RSS_LIMIT_MB:-64}
WORK=${BENCH_DIR:-/tmp/stowage-push-bench}

log() { printf 'bench: %s\n' "$*" >&2; }

need=()
for tool in hyperfine skopeo docker-registry /usr/bin/time python3; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "missing ${need[*]}; run as root to install them"
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        hyperfine skopeo docker-registry time python3 >/dev/null
fi

if [ -n "${STOWAGE_BIN:-}" ]; then
    STOWAGE=$STOWAGE_BIN
else
    cargo build --release -q
    STOWAGE=$PWD/target/release/stowage
fi
log "stowage: $("$STOWAGE" --version); $(skopeo --version); $(hyperfine --version)"

mkdir -p "$WORK"
export STOWAGE_CACHE_DIR=$WORK/cache
# Credentials and registries.conf of the user stay out of it.
export DOCKER_CONFIG=$WORK/docker-config
export REGISTRY_AUTH_FILE=$WORK/auth.json
mkdir -p "$DOCKER_CONFIG"
[ -s "$REGISTRY_AUTH_FILE" ] || printf '{"auths":{}}\n' >"$REGISTRY_AUTH_FILE"

# --- the registry -----------------------------------------------------------
port=${BENCH_PORT:-25500}
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
done
HOST=127.0.0.1:$port
STORE=$WORK/registry
rm -rf "$STORE"
mkdir -p "$STORE"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STORE
  delete:
    enabled: true
http:
  addr: $HOST
  secret: stowage-push-bench
EOF
# distribution reads every REGISTRY_* variable as a config override.
unset_registry_vars=()
while IFS='=' read -r name _; do
    case "$name" in REGISTRY_*) unset_registry_vars+=(-u "$name") ;; esac
done < <(env)
env "${unset_registry_vars[@]}" docker-registry serve "$WORK/registry.yml" \
    >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
trap 'kill "$REGISTRY_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || {
    cat "$WORK/registry.log" >&2
    log "docker-registry did not start"
    exit 1
}
log "registry on $HOST (pid $REGISTRY_PID), storage $STORE"

# --- the ~200 MB image ------------------------------------------------------
APP=$WORK/app-$SIZE_MB
if [ ! -f "$APP/.generated-v2" ]; then
    rm -rf "$APP"
    log "generating a ${SIZE_MB} MB app in $APP"
    python3 - "$APP" "$SIZE_MB" <<'PY'
import os, random, sys
root, size_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261121)
total = size_mb * 1024 * 1024
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(4000)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])
def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
# library: random bytes (wheels, shared objects) in 200 files and 50 MB of
# text; workspace: random data files. Three layers of different sizes.
lib_random = total // 2
for i in range(200):
    write(f"{root}/library/pkg{i % 20:02d}/lib{i:03d}.so", rng.randbytes(lib_random // 200))
text_total = total // 4
for i in range(100):
    write(f"{root}/library/pkg{i % 20:02d}/mod{i:03d}.py", text(text_total // 100))
ws_random = total - lib_random - text_total
for i in range(10):
    write(f"{root}/workspace/data/part{i}.bin", rng.randbytes(ws_random // 10))
with open(f"{root}/stowage.toml", "w") as f:
    f.write('base = "scratch"\n'
            '[app]\nlibrary = { source = "library", target = "/opt/app" }\n'
            'workspace = { source = "workspace", target = "/home/user/work" }\n'
            'command = ["/opt/app/run"]\n')
open(f"{root}/.generated-v2", "w").close()
PY
fi
# scratch has no shell: the command is a static ELF that exits 0, which the
# start check follows (a #!/bin/sh script would rightly be refused).
[ -f "$APP/library/run" ] || python3 benches/exit0-elf.py "$APP/library/run"
LAYOUT=$WORK/layout
if [ ! -f "$LAYOUT/.built-v2-$SIZE_MB" ]; then
    rm -rf "$LAYOUT"
    log "building the app into oci:$LAYOUT:bench"
    "$STOWAGE" -q build -f "$APP/stowage.toml" -o "oci:$LAYOUT:bench" >/dev/null
    touch "$LAYOUT/.built-v2-$SIZE_MB"
fi
layers_of() { # "N layers, M MiB" of the image tagged bench in an OCI layout
    python3 - "$1" <<'PY'
import json, os, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
desc = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "bench"][0]
man = json.load(open(os.path.join(d, "blobs", *desc["digest"].split(":"))))
sizes = [l["size"] for l in man["layers"]]
print(f"{len(sizes)} layers, {sum(sizes) / 2**20:.1f} MiB compressed ({', '.join(f'{s / 2**20:.1f}' for s in sizes)})")
PY
}
log "image: $(layers_of "$LAYOUT")"

# --- 1. push times ------------------------------------------------------------
COUNTER=$WORK/counter
echo 0 >"$COUNTER"
# Each iteration: empty registry storage, a new repository name.
prepare="rm -rf $STORE/docker && echo \$((\$(cat $COUNTER) + 1)) > $COUNTER"
stowage_cmd="$STOWAGE -q --insecure-registry $HOST push oci:$LAYOUT:bench $HOST/bench/a\$(cat $COUNTER):1"
skopeo_cmd="skopeo copy -q --dest-tls-verify=false oci:$LAYOUT:bench docker://$HOST/bench/b\$(cat $COUNTER):1"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/push.json" \
    --prepare "$prepare" \
    -n "stowage push" "$stowage_cmd" \
    -n "skopeo copy" "$skopeo_cmd"

# The last stowage push is in the registry with the layout's digest.
digest=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); print([m["digest"] for m in i["manifests"] if m.get("annotations",{}).get("org.opencontainers.image.ref.name")=="bench"][0])' "$LAYOUT/index.json")
"$STOWAGE" -q --insecure-registry "$HOST" push "oci:$LAYOUT:bench" "$HOST/bench/check:1" >/dev/null
pushed=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$HOST/bench/check:1")
[ "$pushed" = "$digest" ] || {
    log "stowage pushed $pushed, the layout holds $digest"
    exit 1
}

python3 - "$WORK/push.json" "$SIZE_MB" <<'PY'
import json, sys
rows = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
size_mb = int(sys.argv[2])
print()
print(f"{'command':14} {'median s':>9} {'mean s':>8} {'min s':>7} {'max s':>7} {'MB/s':>7}")
for name, r in rows.items():
    print(f"{name:14} {r['median']:9.3f} {r['mean']:8.3f} {r['min']:7.3f} {r['max']:7.3f} {size_mb / r['median']:7.1f}")
s, k = rows["stowage push"]["median"], rows["skopeo copy"]["median"]
print(f"ratio (median stowage / median skopeo): {s / k:.2f}  ->  stowage is {k / s:.2f}x as fast as skopeo")
PY

# --- 2. peak RSS with a 2 GiB layer -----------------------------------------
if [ -n "${SKIP_BIG:-}" ]; then
    exit 0
fi
BIG=$WORK/big-$BIG_MB
if [ ! -f "$BIG/.generated" ]; then
    rm -rf "$BIG"
    mkdir -p "$BIG/library"
    log "writing ${BIG_MB} MiB from /dev/urandom"
    dd if=/dev/urandom of="$BIG/library/blob.bin" bs=1M count="$BIG_MB" status=none
    printf 'base = "scratch"\n[app]\nlibrary = { source = "library", target = "/opt/big" }\n' >"$BIG/stowage.toml"
    touch "$BIG/.generated"
fi
BIG_LAYOUT=$WORK/big-layout
if [ ! -f "$BIG_LAYOUT/.built-$BIG_MB" ]; then
    rm -rf "$BIG_LAYOUT"
    log "building the ${BIG_MB} MiB layer (gzip of random bytes; takes a while)"
    build_start=$(date +%s)
    "$STOWAGE" -q build -f "$BIG/stowage.toml" -o "oci:$BIG_LAYOUT:bench" >/dev/null
    log "built in $(($(date +%s) - build_start)) s"
    touch "$BIG_LAYOUT/.built-$BIG_MB"
fi
log "big image: $(layers_of "$BIG_LAYOUT")"

peak() { # prints "SECONDS KiB" of a command: wall time and peak RSS
    local out
    out=$(/usr/bin/time -v "$@" 2>&1 >/dev/null)
    printf '%s %s\n' \
        "$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' <<<"$out")" \
        "$(awk -F': ' '/Maximum resident set size/ {print $2}' <<<"$out")"
}
# Each push starts alike: the registry emptied and its writes flushed, the
# layer in the page cache (whoever read it first from disk would pay for it).
level_start() {
    rm -rf "$STORE/docker"
    sync
    cat "$BIG_LAYOUT"/blobs/sha256/* >/dev/null
}
level_start
read -r stowage_wall stowage_rss < <(peak "$STOWAGE" -q --insecure-registry "$HOST" push "oci:$BIG_LAYOUT:bench" "$HOST/bench/big-stowage:1")
level_start
read -r skopeo_wall skopeo_rss < <(peak skopeo copy -q --dest-tls-verify=false "oci:$BIG_LAYOUT:bench" "docker://$HOST/bench/big-skopeo:1")
echo
echo "push of one ${BIG_MB} MiB layer (wall time, peak RSS):"
awk -v w="$stowage_wall" -v r="$stowage_rss" 'BEGIN { printf "  stowage push  %8s  %7.1f MiB\n", w, r / 1024 }'
awk -v w="$skopeo_wall" -v r="$skopeo_rss" 'BEGIN { printf "  skopeo copy   %8s  %7.1f MiB\n", w, r / 1024 }'
if [ "$stowage_rss" -gt $((RSS_LIMIT_MB * 1024)) ]; then
    log "stowage's peak RSS ${stowage_rss} KiB is above the ${RSS_LIMIT_MB} MiB bound"
    exit 1
fi
echo "  stowage stays under the ${RSS_LIMIT_MB} MiB bound"
