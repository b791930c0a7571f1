#!/usr/bin/env bash
# The test command: `sudo scripts/test.sh` (or `scripts/test.sh` as root).
#
# Installs the real peers the tests drive (scripts/test-env.sh), starts a
# private dockerd, then runs the format check, clippy, the module layering
# check (scripts/check-architecture.py) and every test. The dockerd is
# stopped on exit if this run started it. Works unattended
# (CI=true, no stdin). Extra arguments go to the test runner, e.g.
# `scripts/test.sh docker_` runs the tests whose names contain docker_.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: error: the tests need root (apt-get, dockerd, podman); run: sudo scripts/test.sh" >&2
    exit 1
fi

# Under sudo, root's PATH usually lacks the invoking user's rustup toolchain.
if ! command -v cargo >/dev/null 2>&1 && [ -n "${SUDO_USER:-}" ]; then
    user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    export CARGO_HOME=${CARGO_HOME:-$user_home/.cargo}
    export RUSTUP_HOME=${RUSTUP_HOME:-$user_home/.rustup}
    export PATH="$CARGO_HOME/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || {
    echo "test.sh: error: cargo not found on PATH" >&2
    exit 1
}

export STOWAGE_TEST_DIR=${STOWAGE_TEST_DIR:-/tmp/stowage-test}

# Stop dockerd at exit only if it was not already running: a developer who
# started it by hand keeps it.
if bash scripts/test-env.sh status >/dev/null 2>&1; then
    started_dockerd=0
else
    started_dockerd=1
fi
stop_env() {
    if [ "$started_dockerd" -eq 1 ]; then
        bash scripts/test-env.sh stop || true
    fi
}
trap stop_env EXIT

bash scripts/test-env.sh start </dev/null
# shellcheck source=/dev/null
source "$STOWAGE_TEST_DIR/env"

started=$(date +%s)
echo "test.sh: cargo fmt --check" >&2
cargo fmt --all --check
echo "test.sh: cargo clippy" >&2
cargo clippy --all-targets -- -D warnings
echo "test.sh: module layering (scripts/check-architecture.py)" >&2
python3 scripts/test_check_architecture.py
python3 scripts/check-architecture.py

# A short fuzz run of every target (fuzz/README.md): STOWAGE_FUZZ_SECONDS
# each (default 20; 0 skips). Under CI=true cargo-fuzz is installed when
# missing (about 2 minutes on 2 cores, plus 3 for the instrumented build);
# elsewhere a missing cargo-fuzz skips this loudly. The crashers found so far
# are replayed by tests/fuzz_regressions.rs in every run regardless.
fuzz_seconds=${STOWAGE_FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" -gt 0 ]; then
    if ! cargo fuzz --version >/dev/null 2>&1 && [ "${CI:-}" = "true" ]; then
        echo "test.sh: installing cargo-fuzz" >&2
        cargo install cargo-fuzz --locked --version 0.13.2
    fi
    if cargo fuzz --version >/dev/null 2>&1; then
        echo "test.sh: cargo fuzz, ${fuzz_seconds}s per target" >&2
        # -s none: no AddressSanitizer, which needs nightly flags; stowage's unsafe code
        # is libc system calls, which the fuzzed parsers do not reach.
        cargo fuzz build -s none
        for target in reference spec archive www_authenticate tar_read; do
            mkdir -p "fuzz/corpus/$target" fuzz/artifacts
            log="fuzz/artifacts/$target.log"
            if ! cargo fuzz run -s none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
                "fuzz/regressions/$target" -- -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
                >"$log" 2>&1; then
                tail -n 40 "$log" >&2
                echo "test.sh: error: fuzz target $target failed; the input is in fuzz/artifacts/$target" >&2
                exit 1
            fi
            echo "test.sh: fuzz $target: $(grep -E '^Done' "$log" || echo 'no summary')" >&2
        done
    else
        echo "test.sh: SKIPPED the fuzz run: cargo-fuzz is missing (cargo install cargo-fuzz)" >&2
    fi
fi
if cargo nextest --version >/dev/null 2>&1; then
    echo "test.sh: cargo nextest run" >&2
    # The end-to-end tests mostly wait on dockerd and podman, so more threads
    # than the 2 cores keep the machine busy.
    # nextest does not run doctests; they go first so that the run ends on
    # nextest's summary of the real suite.
    cargo test --doc
    cargo nextest run --no-fail-fast --test-threads "${STOWAGE_TEST_THREADS:-4}" "$@"
else
    echo "test.sh: cargo test" >&2
    cargo test --no-fail-fast -- --test-threads "${STOWAGE_TEST_THREADS:-4}" "$@"
fi
echo "test.sh: done in $(($(date +%s) - started))s" >&2
