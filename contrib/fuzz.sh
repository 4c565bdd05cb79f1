#!/bin/sh
# Runs every cargo-fuzz target of fuzz/ for a bounded time (default 60 s each).
#   contrib/fuzz.sh                # all targets, 60 s each
#   FUZZ_SECONDS=600 contrib/fuzz.sh metadata api
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a C++ compiler. cargo-fuzz needs nightly
# features (-Z sanitizer); RUSTC_BOOTSTRAP=1 enables them on a stable toolchain.
# Crashes are saved under fuzz/artifacts/<target>/ and stop the script with a non-zero status;
# the corpus grows under fuzz/corpus/<target>/ (both git-ignored).
set -eu
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
targets="${*:-metadata email config permfile api job}"
export RUSTC_BOOTSTRAP=1
for t in $targets; do
    echo "== fuzz target $t for ${seconds} s"
    cargo fuzz run -O "$t" -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 2>&1 \
        | tee "fuzz/$t.log" | grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==|SUMMARY|thread .* panicked|artifact_prefix|Test unit written)' || true
    grep -qE '^Done [0-9]+ runs' "fuzz/$t.log" || { echo "fuzz target $t failed: see fuzz/$t.log"; exit 1; }
done
