#!/bin/sh
# Entry point for SyftBox, which runs every apps/<name>/run.sh with the app folder as working
# directory and sends this script's output to logs/app.log. Builds the release binary when it is
# missing or older than the sources, then replaces this shell with it (so SIGTERM reaches it and
# SyftBox's environment passes through unchanged).
set -u
cd "$(dirname "$0")" || exit 1
BIN="$(pwd)/target/release/syft-reviewer"
# SyftBox starts apps from a login shell, but rustup's PATH line is often only in interactive rc files.
PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export PATH

needs_build() {
    [ ! -x "$BIN" ] && return 0
    [ -n "$(find src app_data_template Cargo.toml Cargo.lock -newer "$BIN" 2>/dev/null | head -n 1)" ]
}

if needs_build; then
    if ! command -v cargo >/dev/null 2>&1; then
        echo "syft-reviewer: BUILD FAILED: cargo is not installed for user $(id -un)." >&2
        echo "syft-reviewer: install Rust (https://rustup.rs), then restart the app in SyftBox." >&2
        exit 1
    fi
    echo "syft-reviewer: building the release binary (first start, or the sources changed)..."
    if ! cargo build --release --locked 2>&1; then
        echo "syft-reviewer: BUILD FAILED: see the compiler output above. The reviewer is NOT running." >&2
        exit 1
    fi
fi
exec "$BIN" run "$@"
