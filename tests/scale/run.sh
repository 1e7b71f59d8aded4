#!/usr/bin/env bash
# Scaling out, measured (issue 16): one `names` primary, three `names` secondaries kept in
# sync by NOTIFY and IXFR, and dnsdist in front balancing between the secondaries.
# Everything runs on 127.0.0.1; every process is stopped by PID on exit.
#
#   sudo tests/scale/run.sh                 # installs dnsdist and dnsperf if missing
#   SCALE_SECONDS=3 tests/scale/run.sh      # quick trial
#
# What it measures:
#   1. propagation: the zone file rewritten with serial+1 and a new record, SIGHUP to the
#      primary, then each secondary polled (dig +short SOA every 10 ms, at most 10 s) until
#      it serves the new serial; SCALE_ROUNDS rounds, min/median/max of the time until all
#      three serve it (the new record is then checked on each), of the time until the
#      primary itself serves it (the reload), and of the difference;
#   2. QPS (dnsperf, SCALE_SECONDS, as many queries as SCALE_CLIENTS clients with
#      SCALE_OUTSTANDING in flight get through) through dnsdist, against one secondary
#      alone, and against the primary alone;
#   3. queries lost through dnsdist at SCALE_RATE queries per second: with all three up
#      (the baseline), when one secondary is killed (kill -9) a third into the run, and when
#      it is started again (with its --zone-dir copy, so it serves at once) a third into the
#      next run.
# The table goes to stdout and to SCALE_OUT/<date>.md. The configs used are the files next
# to this script: primary.toml, secondary.toml (names serve --config; run.sh gives the
# per-instance flags on the command line) and dnsdist.conf.
#
# Knobs (environment): SCALE_PORT_BASE (18350: primary; +1..+3 secondaries; +4 dnsdist),
# SCALE_ROUNDS (5), SCALE_SECONDS (10), SCALE_CLIENTS (4), SCALE_OUTSTANDING (200),
# SCALE_RATE (5000), SCALE_INSTALL (1), SCALE_BUILD (1), SCALE_OUT (tests/scale/results),
# SCALE_KEEP_WORK (0).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT_BASE=${SCALE_PORT_BASE:-18350}
ROUNDS=${SCALE_ROUNDS:-5}
SECONDS_PER_RUN=${SCALE_SECONDS:-10}
CLIENTS=${SCALE_CLIENTS:-4}
OUTSTANDING=${SCALE_OUTSTANDING:-200}
RATE=${SCALE_RATE:-5000}
OUT=${SCALE_OUT:-$HERE/results}
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
NAMES=$TARGET/release/names
ZONE=scale.test

die() {
    echo "run.sh: $*" >&2
    exit 2
}

# number NAME VALUE MIN MAX: VALUE is a whole number in MIN..MAX.
number() {
    case "$2" in '' | *[!0-9]*) die "$1 must be a whole number" ;; esac
    [ ${#2} -le 9 ] || die "$1 must be $3..$4"
    if [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then die "$1 must be $3..$4"; fi
}
number SCALE_PORT_BASE "$PORT_BASE" 1024 65530
number SCALE_ROUNDS "$ROUNDS" 1 100
number SCALE_SECONDS "$SECONDS_PER_RUN" 3 600
number SCALE_CLIENTS "$CLIENTS" 1 256
number SCALE_OUTSTANDING "$OUTSTANDING" 1 65535
number SCALE_RATE "$RATE" 1 1000000
# Leading zeros are not octal.
PORT_BASE=$((10#$PORT_BASE)) ROUNDS=$((10#$ROUNDS)) SECONDS_PER_RUN=$((10#$SECONDS_PER_RUN))
CLIENTS=$((10#$CLIENTS)) OUTSTANDING=$((10#$OUTSTANDING)) RATE=$((10#$RATE))

# The default ports are below the range the interoperability tests pick theirs from
# (20000-32000) and below the kernel's ephemeral ports, so a test running meanwhile does
# not take them.
PRIMARY_PORT=$PORT_BASE
SECONDARY_PORTS=($((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)))
DNSDIST_PORT=$((PORT_BASE + 4))

# --- tools ---------------------------------------------------------------------------------
need=()
command -v dnsdist >/dev/null || need+=(dnsdist)
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dig >/dev/null || need+=(bind9-dnsutils)
if [ ${#need[@]} -gt 0 ]; then
    [ "${SCALE_INSTALL:-1}" = 1 ] || die "missing ${need[*]} (SCALE_INSTALL=0)"
    [ "$(id -u)" = 0 ] || die "missing ${need[*]}: run as root to install them"
    # The packaged dnsdist must not start on install (it would take port 53).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        remove_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    [ -z "${remove_policy:-}" ] || rm -f /usr/sbin/policy-rc.d
    systemctl stop dnsdist 2>/dev/null || true
fi
if [ "${SCALE_BUILD:-1}" = 1 ]; then
    (cd "$ROOT" && cargo build --release -q -p names-shell)
fi
[ -x "$NAMES" ] || die "no $NAMES (build it: cargo build --release -p names-shell)"
# The commit measured, taken before the results file is written.
VERSION=$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?')

for port in "$PRIMARY_PORT" "${SECONDARY_PORTS[@]}" "$DNSDIST_PORT"; do
    if ss -Hlnu "sport = :$port" | grep -q . || ss -Hlnt "sport = :$port" | grep -q .; then
        die "port $port is in use (choose another SCALE_PORT_BASE)"
    fi
done

# --- processes -----------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/names-scale.XXXXXX)
PRIMARY_PID=
SECONDARY_PIDS=("" "" "")
DNSDIST_PID=
OTHER_PIDS=()
PAUSE_PID=

# Stops one process by PID: TERM, then KILL after 5 s.
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "$PAUSE_PID" "${OTHER_PIDS[@]}" "$DNSDIST_PID" "${SECONDARY_PIDS[@]}" "$PRIMARY_PID"; do
        stop_pid "$pid"
    done
    if [ "${SCALE_KEEP_WORK:-0}" = 1 ]; then
        echo "work files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pause SECONDS: a sleep an interrupt cuts short.
pause() {
    sleep "$1" &
    PAUSE_PID=$!
    wait "$PAUSE_PID"
    PAUSE_PID=
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# wait_ready PID LOG: waits (at most 10 s) for names' ready line in LOG.
wait_ready() {
    local pid=$1 log=$2 i
    for i in $(seq 1 200); do
        grep -q "names: ready " "$log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || die "names exited before ready: $(cat "$log")"
        sleep 0.05
    done
    die "names not ready within 10 s: $(cat "$log")"
}

# serial PORT: the serial of the zone's SOA served on PORT (empty without an answer).
serial() {
    dig +short +norec +time=1 +tries=1 @127.0.0.1 -p "$1" "$ZONE" SOA 2>/dev/null | awk '{print $3}'
}

# wait_serial PORT SERIAL: waits (at most 10 s) until PORT serves SERIAL.
wait_serial() {
    local i
    for i in $(seq 1 200); do
        [ "$(serial "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    die "127.0.0.1:$1 does not serve serial $2 within 10 s"
}

# The zone: SOA, NS, 1000 hosts (the query names) and one record per change so far.
write_zone() {
    local serial=$1 r
    {
        echo "\$ORIGIN $ZONE."
        echo "\$TTL 300"
        echo "@ IN SOA ns1 hostmaster $serial 3600 600 86400 300"
        echo "@ NS ns1"
        echo "ns1 A 192.0.2.1"
        awk 'BEGIN { for (i = 1; i <= 1000; i++) printf "host%d A 198.51.100.%d\n", i, i % 250 + 1 }'
        for r in $(seq 2 "$serial"); do
            echo "change$r A 203.0.113.$((r % 250 + 1))"
        done
    } >"$WORK/$ZONE.zone.tmp"
    mv "$WORK/$ZONE.zone.tmp" "$WORK/$ZONE.zone"
}

start_primary() {
    local notify=() port
    for port in "${SECONDARY_PORTS[@]}"; do
        notify+=(--notify "127.0.0.1:$port")
    done
    "$NAMES" serve --config "$HERE/primary.toml" --listen "127.0.0.1:$PRIMARY_PORT" \
        --zone "$WORK/$ZONE.zone" "${notify[@]}" 2>>"$WORK/primary.log" &
    PRIMARY_PID=$!
    wait_ready "$PRIMARY_PID" "$WORK/primary.log"
}

# start_secondary I (0..2)
start_secondary() {
    local i=$1 log="$WORK/secondary-$(($1 + 1)).log"
    "$NAMES" serve --config "$HERE/secondary.toml" --listen "127.0.0.1:${SECONDARY_PORTS[$i]}" \
        --secondary "$ZONE=127.0.0.1:$PRIMARY_PORT" --zone-dir "$WORK/zones-$((i + 1))" 2>>"$log" &
    SECONDARY_PIDS[$i]=$!
    wait_ready "${SECONDARY_PIDS[$i]}" "$log"
}

# The configs must be what `names serve --config` accepts (relative paths from $WORK).
write_zone 1
(cd "$WORK" && "$NAMES" check-config "$HERE/primary.toml" >/dev/null) || die "primary.toml rejected"
(cd "$WORK" && "$NAMES" check-config "$HERE/secondary.toml" >/dev/null) || die "secondary.toml rejected"
dnsdist --check-config -C "$HERE/dnsdist.conf" >/dev/null || die "dnsdist.conf rejected"

start_primary
for i in 0 1 2; do
    start_secondary "$i"
done
for port in "${SECONDARY_PORTS[@]}"; do
    wait_serial "$port" 1
done
SCALE_PORT_BASE=$PORT_BASE dnsdist --supervised --disable-syslog -C "$HERE/dnsdist.conf" \
    >"$WORK/dnsdist.log" 2>&1 &
DNSDIST_PID=$!
wait_serial "$DNSDIST_PORT" 1
# All three backends up: the first health checks have run.
pause 2

# --- 1. propagation ------------------------------------------------------------------------
# poll_until PORT SERIAL FILE: polls PORT every 10 ms (at most 1000 times) until it serves
# SERIAL, then writes the time (ms) into FILE.
poll_until() {
    local i
    for i in $(seq 1 1000); do
        if [ "$(serial "$1")" = "$2" ]; then
            now_ms >"$3"
            return 0
        fi
        sleep 0.01
    done
}

# spread: min / median / max of the numbers on stdin, one a line.
spread() {
    sort -n | awk '{ v[NR] = $1 } END { print v[1], v[int((NR + 1) / 2)], v[NR] }'
}

# Each round polls the three secondaries and, to tell the reload apart from the
# propagation, the primary itself.
POLLED=("${SECONDARY_PORTS[@]}" "$PRIMARY_PORT")
PROPAGATION=()
RELOAD=()
LAG=()
current=1
for round in $(seq 1 "$ROUNDS"); do
    current=$((current + 1))
    write_zone "$current"
    rm -f "$WORK"/seen.*
    start=$(now_ms)
    kill -HUP "$PRIMARY_PID"
    for i in 0 1 2 3; do
        poll_until "${POLLED[$i]}" "$current" "$WORK/seen.$i" &
        OTHER_PIDS+=($!)
    done
    wait "${OTHER_PIDS[@]}"
    OTHER_PIDS=()
    [ -s "$WORK/seen.3" ] || die "round $round: the primary did not serve serial $current within 10 s"
    reload=$(($(cat "$WORK/seen.3") - start))
    last=0
    each=()
    for i in 0 1 2; do
        [ -s "$WORK/seen.$i" ] || die "round $round: secondary $((i + 1)) did not serve serial $current within 10 s"
        seen=$(($(cat "$WORK/seen.$i") - start))
        each+=("$seen")
        [ "$seen" -gt "$last" ] && last=$seen
        got=$(dig +short +norec @127.0.0.1 -p "${SECONDARY_PORTS[$i]}" "change$current.$ZONE" A)
        [ "$got" = "203.0.113.$((current % 250 + 1))" ] \
            || die "round $round: secondary $((i + 1)) serves serial $current without its new record"
    done
    PROPAGATION+=("$last")
    RELOAD+=("$reload")
    LAG+=($((last > reload ? last - reload : 0)))
    echo "propagation round $round (serial $current): $last ms (primary $reload ms; secondaries ${each[*]} ms)" >&2
    pause 1
done
ixfr=$(cat "$WORK"/secondary-*.log | grep -c "transferred by IXFR" || true)
read -r p_min p_median p_max < <(printf '%s\n' "${PROPAGATION[@]}" | spread)
read -r r_min r_median r_max < <(printf '%s\n' "${RELOAD[@]}" | spread)
read -r l_min l_median l_max < <(printf '%s\n' "${LAG[@]}" | spread)

# --- 2. QPS --------------------------------------------------------------------------------
awk 'BEGIN { srand(16); for (i = 0; i < 10000; i++) printf "host%d.scale.test A\n", int(rand() * 1000) + 1 }' \
    >"$WORK/queries.txt"
# perf_start PORT NAME [dnsperf options]: starts dnsperf against PORT for SECONDS_PER_RUN,
# its output into $WORK/perf-NAME.txt; perf_wait waits for it. Waiting with `wait` (not in
# the foreground) lets an interrupt stop everything at once.
PERF_PID=
perf_start() {
    local port=$1 name=$2
    shift 2
    dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -l "$SECONDS_PER_RUN" -t 2 \
        -c "$CLIENTS" "$@" >"$WORK/perf-$name.txt" 2>&1 &
    PERF_PID=$!
    OTHER_PIDS=("$PERF_PID")
}
perf_wait() {
    wait "$PERF_PID" || die "dnsperf failed: $(tail -3 "$WORK/perf-$1.txt")"
    OTHER_PIDS=()
}
perf() {
    perf_start "$@"
    perf_wait "$2"
}
# field NAME PATTERN: the first word after PATTERN in perf-NAME.txt.
field() {
    awk -v p="$2" 'i = index($0, p) { $0 = substr($0, i + length(p)); print $1; exit }' "$WORK/perf-$1.txt"
}
qps() { printf '%.0f' "$(field "$1" "Queries per second:")"; }
lost() { field "$1" "Queries lost:"; }
latency_ms() { awk -v s="$(field "$1" "Average Latency (s):")" 'BEGIN { printf "%.2f", s * 1000 }'; }

perf "$DNSDIST_PORT" dnsdist -q "$OUTSTANDING"
pause 1
perf "${SECONDARY_PORTS[0]}" secondary -q "$OUTSTANDING"
pause 1
perf "$PRIMARY_PORT" primary -q "$OUTSTANDING"
pause 1

# --- 3. queries lost when a secondary goes and comes back -----------------------------------
at_third=$((SECONDS_PER_RUN / 3))
perf "$DNSDIST_PORT" steady -Q "$RATE" -q "$OUTSTANDING"
pause 1

perf_start "$DNSDIST_PORT" kill -Q "$RATE" -q "$OUTSTANDING"
pause "$at_third"
# Disowned first, so the shell does not report the kill.
disown "${SECONDARY_PIDS[2]}"
kill -KILL "${SECONDARY_PIDS[2]}"
for i in $(seq 1 100); do
    kill -0 "${SECONDARY_PIDS[2]}" 2>/dev/null || break
    sleep 0.01
done
SECONDARY_PIDS[2]=
perf_wait kill
pause 1

perf_start "$DNSDIST_PORT" restart -Q "$RATE" -q "$OUTSTANDING"
pause "$at_third"
restarted=$(now_ms)
start_secondary 2
serving_ms=
for i in $(seq 1 1000); do
    if [ "$(serial "${SECONDARY_PORTS[2]}")" = "$current" ]; then
        serving_ms=$(($(now_ms) - restarted))
        break
    fi
    sleep 0.01
done
perf_wait restart
[ -n "$serving_ms" ] || die "the restarted secondary does not serve serial $current within 10 s"
grep -q "loaded from" "$WORK/secondary-3.log" || die "the restarted secondary did not load its --zone-dir copy"

# --- report --------------------------------------------------------------------------------
date_utc=$(date -u +%Y-%m-%d)
mkdir -p "$OUT"
report() {
    echo "# Scaling out: one names primary, three names secondaries, dnsdist in front"
    echo
    echo "$date_utc, $(nproc) CPUs, names $VERSION,"
    echo "$(dnsdist --version 2>/dev/null | head -1 | cut -d' ' -f1-2), dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }');"
    echo "one worker each; dnsperf $SECONDS_PER_RUN s, $CLIENTS clients, $OUTSTANDING queries in flight;"
    echo "every process on this machine's loopback (indicative figures)."
    echo
    echo "| measure | value |"
    echo "|---|---|"
    echo "| zone change to served by all 3 secondaries ($ROUNDS rounds; min / median / max) | $p_min / $p_median / $p_max ms |"
    echo "| zone change to served by the primary itself (reload; min / median / max) | $r_min / $r_median / $r_max ms |"
    echo "| last secondary after the primary (NOTIFY, SOA query, IXFR; min / median / max) | $l_min / $l_median / $l_max ms |"
    echo "| transfers by IXFR (of $((3 * ROUNDS)) changes) | $ixfr |"
    echo "| QPS through dnsdist (3 secondaries) | $(qps dnsdist) (latency $(latency_ms dnsdist) ms, lost $(lost dnsdist)) |"
    echo "| QPS against one secondary alone | $(qps secondary) (latency $(latency_ms secondary) ms, lost $(lost secondary)) |"
    echo "| QPS against the primary alone | $(qps primary) (latency $(latency_ms primary) ms, lost $(lost primary)) |"
    echo "| lost at $RATE q/s through dnsdist, all up | $(lost steady) |"
    echo "| lost at $RATE q/s, one secondary killed (kill -9) at ${at_third} s | $(lost kill) |"
    echo "| lost at $RATE q/s, it restarted (--zone-dir) at ${at_third} s | $(lost restart) |"
    echo "| restart to serving the current serial | $serving_ms ms |"
}
report | tee "$OUT/$date_utc.md"
