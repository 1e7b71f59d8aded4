#!/usr/bin/env bash
# Soak run (not part of .ci/run): sustained dnsperf load on loopback against `names`
# (release build) forwarding to a fake upstream that drops 5% of queries.
#
#   tests/soak/soak.sh [SECONDS=60] [QPS=5000] [NAMES=SECONDS*QPS]
#
# By default every query asks a distinct name, so none is answered from the cache and
# all of them go through the lossy upstream; pass a smaller NAMES for cache hits.
# Reports queries sent, answered, SERVFAIL, lost, and the server's RSS at start and end.
# Installs dnsperf from Debian's package if it is missing. Every process it starts is
# stopped by its PID on exit.
set -euo pipefail

secs="${1:-60}"
qps="${2:-5000}"
names_count="${3:-$((secs * qps))}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

if ! command -v dnsperf >/dev/null; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq dnsperf
fi

cargo build --release -p names-shell --manifest-path "$root/Cargo.toml" >/dev/null
bin="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/names"

# Fake upstream: prints its port, then serves.
python3 "$root/tests/soak/fake_upstream.py" --drop 0.05 >"$work/up.port" 2>"$work/up.log" &
up_pid=$!
pids+=("$up_pid")
for _ in $(seq 50); do [ -s "$work/up.port" ] && break; sleep 0.1; done
up_port="$(head -1 "$work/up.port")"

"$bin" serve --listen 127.0.0.1:0 --upstream "127.0.0.1:$up_port" 2>"$work/names.log" &
names_pid=$!
pids+=("$names_pid")
for _ in $(seq 100); do grep -q ' ready ' "$work/names.log" && break; sleep 0.1; done
listen="$(grep -o 'udp=[0-9.]*:[0-9]*' "$work/names.log" | head -1 | cut -d= -f2)"
[ -n "$listen" ] || { echo "soak: names did not start:" >&2; cat "$work/names.log" >&2; exit 1; }

seq 1 "$names_count" | awk '{print "n" $1 ".soak.example A"}' >"$work/queries"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$names_pid/status"; }
rss_start="$(rss)"
dnsperf -s "${listen%:*}" -p "${listen##*:}" -d "$work/queries" -l "$secs" -Q "$qps" \
    -t 6 -c 4 -q 2000 >"$work/dnsperf.out" 2>&1 || { cat "$work/dnsperf.out" >&2; exit 1; }
rss_end="$(rss)"

out="$work/dnsperf.out"
sent="$(awk '/Queries sent:/ {print $3}' "$out")"
completed="$(awk '/Queries completed:/ {print $3}' "$out")"
lost="$(awk '/Queries lost:/ {print $3}' "$out")"
noerror="$(grep -o 'NOERROR [0-9]*' "$out" | awk '{print $2}' || true)"
servfail="$(grep -o 'SERVFAIL [0-9]*' "$out" | awk '{print $2}' || true)"
qps_done="$(awk '/Queries per second:/ {print $4}' "$out")"
kill -0 "$names_pid" 2>/dev/null && alive=yes || alive=no
kill "$up_pid" 2>/dev/null || true
wait "$up_pid" 2>/dev/null || true

echo "soak: ${secs}s at ${qps} qps offered, upstream drops 5%"
echo "  queries sent:      ${sent:-?}"
echo "  answered:          ${completed:-?} (NOERROR ${noerror:-0}, SERVFAIL ${servfail:-0})"
echo "  lost (no answer):  ${lost:-?}"
echo "  answered per sec:  ${qps_done:-?}"
echo "  names RSS:         start ${rss_start} kB, end ${rss_end} kB"
echo "  names still up:    $alive"
echo "  $(cat "$work/up.log")"
