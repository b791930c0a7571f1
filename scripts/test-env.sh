#!/usr/bin/env bash
# Prepares this machine for stowage's end-to-end tests, and tears that down.
#
#   scripts/test-env.sh [start]   install the tools, start a private dockerd,
#                                 write the podman config and $STATE/env
#   scripts/test-env.sh stop      stop the dockerd that `start` started
#   scripts/test-env.sh status    exit 0 when the private dockerd answers
#
# STATE is ${STOWAGE_TEST_DIR:-/tmp/stowage-test}. Nothing outside it is
# configured: the user's docker and podman setups are left alone. After
# `start`, `source "$STATE/env"` points docker, podman and skopeo at it.
#
# Idempotent: installed packages are not reinstalled, a running dockerd is
# reused. Needs root (apt-get, dockerd, rootful podman with vfs storage).
#
# Quirks of the sandboxes this runs in (Debian 12, cgroup v1, no systemd,
# a hard RLIMIT_NOFILE of 20000), and what is done about each:
# * podman's default ulimits (nofile=1048576) are above the hard limit, so
#   runc fails with "error setting rlimit type 7: operation not permitted";
#   containers.conf sets `default_ulimits = []` so containers inherit ours.
# * no systemd and no journald: podman gets `cgroup_manager = "cgroupfs"`,
#   `events_logger = "file"` and the `k8s-file` log driver.
# * no iptables rights worth using and no bridge: dockerd runs with
#   --iptables=false --ip-forward=false --ip-masq=false --bridge=none, so it
#   changes no sysctl and no firewall rule; tests run containers with
#   `--network host`.
# * overlayfs in a container is not dependable: both engines use vfs.
# * dockerd 20.10 uses a system containerd at /run/containerd/containerd.sock
#   when one runs, else starts its own under --exec-root; both work.
# * `apt-get install` starts no services here (policy-rc.d), and we do not
#   want it to: the system docker service is never used.
# * REGISTRY_AUTH_FILE must exist or `podman run` fails; an empty one is
#   written.
# * podman 4.3 and skopeo 1.9 (containers/image 5.23) cannot read a
#   gzip-wrapped docker-archive at all, not even `docker save | gzip`; the
#   tests decompress .tar.gz archives before handing them to those tools.
# * oci-image-tool 1.0.0-rc1 has no `--type imageLayout` ("unimplemented");
#   `validate --type image --ref name=TAG DIR` validates a layout.
# * `docker build` needs DOCKER_BUILDKIT=0 (no buildx here); FROM scratch
#   builds need no network.
# * dockerd leaves $STATE/exec/netns/default mounted when it exits; `stop`
#   unmounts what is left under $STATE.
# * seccomp and AppArmor: the default profiles work; nothing to turn off.
# * the registry tests start their own `docker-registry` processes (one per
#   test, free loopback port, storage in a temporary folder; see
#   tests/e2e/rig/registry.rs). distribution reads every REGISTRY_* variable
#   as a config override, so the REGISTRY_AUTH_FILE exported here for podman
#   must be removed from its environment ("cannot unmarshal !!str … into
#   configuration.Parameters"). It also accepts a token up to 60 s after its
#   `exp` (clock-skew leeway); the test token server allows for that.
set -euo pipefail

STATE=${STOWAGE_TEST_DIR:-/tmp/stowage-test}
# How long dockerd may take to answer `docker info`.
DOCKERD_TIMEOUT=${STOWAGE_DOCKERD_TIMEOUT:-90}

# Every Debian package the tests or the engines need. podman depends on
# "crun | runc"; runc is listed so the runtime we configure is there.
PACKAGES=(
    docker.io
    docker-registry
    podman
    runc
    conmon
    golang-github-containers-common
    containernetworking-plugins
    skopeo
    umoci
    oci-image-tool
    busybox-static
    iptables
    util-linux
    # The registry tests: bcrypt htpasswd files, and the RSA key, certificate
    # and RS256 signatures of the test token servers; the TLS registry's certificate.
    apache2-utils
    openssl
    # Go's archive/tar, the reader docker, containerd, podman and skopeo read
    # layers with: tests/e2e/go_tar.rs compares stowage's tar reading with it.
    golang-go
    # The real app libraries (tests/e2e/rig/libraries.rs): Debian's
    # `python3 -m venv` (with ensurepip) for the tools venv and the test venvs.
    python3-venv
    # A real installed R package (tests/e2e/licenses.rs): MASS declares
    # `License: GPL-2 | GPL-3` in R's own syntax. Pulls in r-base-core.
    r-cran-mass
)

# The Python tools of the tests, installed from PyPI into $STATE/pytools (a
# venv of Debian's /usr/bin/python3): independent validators of the SBOMs
# stowage writes, and a second inventory of a venv (`cyclonedx-py`); PyNaCl
# writes cosign-encrypted keys from cosign's published format (sign tests);
# detect-secrets is another secret scanner, whose own files stowage's scan
# must pass (secrets tests).
PYTOOLS=(
    spdx-tools==0.8.5
    'cyclonedx-python-lib[json-validation]==11.12.0'
    cyclonedx-bom==7.5.0
    pynacl==1.6.2
    detect-secrets==1.5.0
)

log() { printf 'test-env: %s\n' "$*" >&2; }
die() {
    printf 'test-env: error: %s\n' "$*" >&2
    exit 1
}

case "$STATE" in
/*) ;;
*) die "STOWAGE_TEST_DIR must be an absolute path, got '$STATE'" ;;
esac
case "$STATE" in
*"'"* | *' '*) die "STOWAGE_TEST_DIR must not contain quotes or spaces: '$STATE'" ;;
esac

SOCK="$STATE/docker.sock"
# A unix socket path is limited to 108 bytes.
if [ "${#SOCK}" -ge 100 ]; then
    die "STOWAGE_TEST_DIR is too long for a unix socket path: $SOCK"
fi
export DOCKER_HOST="unix://$SOCK"
export DOCKER_CONFIG="$STATE/docker-config"
PIDFILE="$STATE/dockerd.pid"
DOCKERD_LOG="$STATE/dockerd.log"

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "packages already installed"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        die "missing packages (${missing[*]}); run as root: sudo scripts/test-env.sh"
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Installing docker.io must not start the system's dockerd (it would
    # take /run/containerd and /var/lib/docker): where the machine has no
    # policy-rc.d, one that forbids service starts is in place meanwhile.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0
    { apt-get update && apt-get install -y --no-install-recommends "${PACKAGES[@]}"; } || rc=$?
    if [ "$added_policy" -eq 1 ]; then
        rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
}

# node and npm for the node_modules tests. The machine may already have
# them from elsewhere (NodeSource's nodejs bundles npm), so Debian's
# packages are installed only when one is missing.
install_node() {
    if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
        log "node $(node --version) and npm $(npm --version) present"
        return
    fi
    [ "$(id -u)" -eq 0 ] || die "node or npm missing; run as root: sudo scripts/test-env.sh"
    log "installing: nodejs npm"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm; } ||
        die "apt-get install nodejs npm failed"
}

# $STATE/pytools, rebuilt only when the pins change: the marker holds them.
install_pytools() {
    local dir="$STATE/pytools" marker="$STATE/pytools/.stowage-pytools"
    local want="${PYTOOLS[*]}"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        log "pytools already installed ($dir)"
        return
    fi
    log "creating $dir: ${PYTOOLS[*]}"
    rm -rf "$dir"
    /usr/bin/python3 -m venv "$dir" || die "/usr/bin/python3 -m venv failed (is python3-venv installed?)"
    # PIP_FIND_LINKS, where the machine sets it, would mix local wheels into
    # what PyPI resolves.
    env -u PIP_FIND_LINKS "$dir/bin/pip" install --quiet "${PYTOOLS[@]}" ||
        die "pip install ${PYTOOLS[*]} failed"
    printf '%s' "$want" >"$marker"
}

dockerd_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

docker_answers() {
    docker info --format '{{.ServerVersion}}' >/dev/null 2>&1
}

start_dockerd() {
    local pid waited=0
    if pid=$(dockerd_pid); then
        if docker_answers; then
            log "dockerd already running (pid $pid)"
            return
        fi
        log "dockerd (pid $pid) is starting; waiting for it"
    else
        rm -f "$PIDFILE"
        mkdir -p "$STATE/docker" "$STATE/exec" "$DOCKER_CONFIG"
        # An empty config file of our own, so /etc/docker/daemon.json (if the
        # machine has one) cannot change this daemon.
        printf '{}\n' >"$STATE/daemon.json"
        log "starting dockerd (log: $DOCKERD_LOG)"
        # setsid: the daemon outlives this script and is not killed by a
        # Ctrl-C meant for the test run; `stop` ends it by its pid.
        setsid dockerd \
            --config-file "$STATE/daemon.json" \
            --iptables=false --ip-forward=false --ip-masq=false \
            --bridge=none --userland-proxy=false \
            --storage-driver=vfs \
            --data-root "$STATE/docker" \
            --exec-root "$STATE/exec" \
            --pidfile "$PIDFILE" \
            --host "$DOCKER_HOST" \
            </dev/null >"$DOCKERD_LOG" 2>&1 &
        pid=$!
    fi
    until docker_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "dockerd exited; last lines of $DOCKERD_LOG:"
            tail -n 40 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not start"
        fi
        if [ "$waited" -ge "$DOCKERD_TIMEOUT" ]; then
            log "last lines of $DOCKERD_LOG:"
            tail -n 40 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer 'docker info' within ${DOCKERD_TIMEOUT}s"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "dockerd ready (pid $pid, $(docker info --format '{{.ServerVersion}} {{.Driver}}'))"
}

stop_dockerd() {
    local pid
    if ! pid=$(dockerd_pid); then
        log "dockerd not running"
        unmount_leftovers
        return
    fi
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "dockerd (pid $pid) ignored SIGTERM for 30s; sending SIGKILL"
        kill -KILL "$pid" || true
    fi
    rm -f "$PIDFILE"
    unmount_leftovers
}

# dockerd leaves its default network namespace mounted (nsfs on
# $STATE/exec/netns/default) after it exits, which makes the state folder
# impossible to delete; unmount whatever is still mounted under $STATE.
unmount_leftovers() {
    local mnt
    # Deepest first; /proc/mounts escapes spaces, which STATE never has.
    awk -v prefix="$STATE/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts |
        sort -r |
        while read -r mnt; do
            umount "$mnt" 2>/dev/null || umount -l "$mnt" || log "could not unmount $mnt"
        done
}

write_podman_config() {
    local dir="$STATE/podman"
    mkdir -p "$dir/graph" "$dir/run" "$dir/tmp" "$dir/copy-tmp" "$dir/networks"
    cat >"$dir/containers.conf" <<EOF
# Written by scripts/test-env.sh for stowage's tests; see the quirks there.
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$dir/tmp"
image_copy_tmp_dir = "$dir/copy-tmp"

[network]
network_config_dir = "$dir/networks"
EOF
    cat >"$dir/storage.conf" <<EOF
# Written by scripts/test-env.sh for stowage's tests.
[storage]
driver = "vfs"
graphroot = "$dir/graph"
runroot = "$dir/run"
EOF
    export CONTAINERS_CONF="$dir/containers.conf"
    export CONTAINERS_STORAGE_CONF="$dir/storage.conf"
    # podman run fails with "stat …: no such file" when REGISTRY_AUTH_FILE
    # names a file that does not exist, so an empty one is written.
    export REGISTRY_AUTH_FILE="$STATE/auth.json"
    [ -s "$REGISTRY_AUTH_FILE" ] || printf '{"auths":{}}\n' >"$REGISTRY_AUTH_FILE"
}

write_env_file() {
    local tmp="$STATE/env.tmp"
    {
        echo "# Written by scripts/test-env.sh; source it to use the test engines."
        local name
        for name in STOWAGE_TEST_DIR DOCKER_HOST DOCKER_CONFIG CONTAINERS_CONF \
            CONTAINERS_STORAGE_CONF REGISTRY_AUTH_FILE; do
            printf "export %s='%s'\n" "$name" "${!name}"
        done
    } >"$tmp"
    mv "$tmp" "$STATE/env"
}

check_podman() {
    # Fails loudly now rather than in every podman test.
    if ! podman info >"$STATE/podman-info.txt" 2>&1; then
        cat "$STATE/podman-info.txt" >&2
        die "podman does not work with $CONTAINERS_CONF"
    fi
}

main() {
    local cmd=${1:-start}
    case "$cmd" in
    start)
        install_packages
        install_node
        mkdir -p "$STATE"
        export STOWAGE_TEST_DIR="$STATE"
        install_pytools
        start_dockerd
        write_podman_config
        check_podman
        write_env_file
        log "ready; run: source $STATE/env"
        ;;
    stop)
        stop_dockerd
        ;;
    status)
        dockerd_pid >/dev/null && docker_answers
        ;;
    *)
        die "unknown command '$cmd' (start, stop or status)"
        ;;
    esac
}

main "$@"
