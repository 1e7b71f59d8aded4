#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 30) on the stable toolchain, starting from
# the committed seeds, and prints the executions per target.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (installed here with `cargo install cargo-fuzz` if missing; that needs
# g++ to build libFuzzer). `--sanitizer none` is what works on stable Rust (ASan needs
# nightly). A crash stops its target: the input lands in fuzz/artifacts/<target>/,
# and the script exits non-zero after running the others.
set -euo pipefail

secs="${1:-30}"
shift || true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! cargo fuzz --version >/dev/null 2>&1; then
    command -v g++ >/dev/null || { echo "fuzz/run.sh: g++ is needed to build libFuzzer" >&2; exit 1; }
    cargo install cargo-fuzz
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build --sanitizer none

status=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="$(mktemp)"
    # The working corpus (corpus/, git-ignored) grows; the seeds are read-only inputs.
    if cargo fuzz run --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
        grep -E "panicked|Test unit written|SUMMARY" "$log" | head -5 >&2 || true
    fi
    execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)"
    cov="$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -1 | grep -oE 'cov: [0-9]+' || true)"
    summary+=("$(printf '%-16s %6ss %12s execs  %-10s %s' "$t" "$secs" "${execs:-?}" "${cov:-}" "$result")")
    rm -f "$log"
done

echo "target           time        executions  coverage   result"
printf '%s\n' "${summary[@]}"
exit $status
