#!/usr/bin/env bash
# Side-by-side benchmark of `names` against Unbound, dnsmasq and NSD, with a trivial UDP
# reflector as the ceiling (issue 7). Everything runs on 127.0.0.1.
#
#   sudo tests/bench/compare.sh                 # full run: 10 s per row
#   BENCH_SECONDS=3 tests/bench/compare.sh      # quick trial
#
# What it does:
#   1. installs dnsperf, unbound, dnsmasq, nsd and gnuplot-nox from Debian (BENCH_INSTALL=0 skips),
#      builds `names` and the reflector example in release;
#   2. starts NSD serving bench.test (tests/bench/bench.test.zone, wildcard A) as the upstream;
#   3. for each thread count (BENCH_THREADS, default "1 2") starts, one at a time on its own port,
#      Unbound, dnsmasq and names, each forwarding to NSD with its cache on and logging off,
#      and runs dnsperf for BENCH_SECONDS per workload:
#        CACHE-HIT     1000 names, all asked once first (warm), then looped
#        FORWARD-MISS  names never asked before (a fresh random label per query)
#        SYNTH         names only: workstationN.synth.example (the synth resolver)
#        ZONE          `names --zone bench.test.zone --no-forward` vs an NSD serving the same file
#        LIMIT         the reflector (shell/examples/reflector.rs): one fixed answer per query
#        RECURSE-COLD  Unbound (iterator only) and `names --recursive` resolving from the root of
#                      a loopback hierarchy (NSD serving the root, test. and bench.test, each on
#                      its own 127.53.255.x address at port 53: root needed), every name new
#        RECURSE-WARM  the same servers, the CACHE-HIT names, all resolved once first
#      measuring QPS, lost %, mean latency (dnsperf), the server's CPU per answer
#      ((utime+stime) delta of the server's process tree from /proc / answers) and peak RSS (VmHWM);
#   4. the memory figure: RSS after caching BENCH_MEMORY_NAMES (100k) distinct names minus RSS
#      idle, per name, for names and Unbound;
#   5. prints the table and the ratios of names to each peer, writes them to
#      tests/bench/results/compare.md and the chart to tests/bench/results/compare.svg.
#
# dnsmasq is single-threaded: it runs only in the 1-thread rows. NSD's CPU and RSS are those of
# its whole process tree (main, xfrd and the server-count servers).
#
# Knobs (environment): BENCH_SECONDS (10), BENCH_THREADS ("1 2"), BENCH_CLIENTS (8, dnsperf -c),
# BENCH_OUTSTANDING (500, dnsperf -q), BENCH_SERVERS ("reflector unbound dnsmasq names nsd"),
# BENCH_MEMORY_NAMES (100000; 0 skips the memory figure), BENCH_PORT_BASE (15353),
# BENCH_INSTALL (1), BENCH_BUILD (1), BENCH_OUT (tests/bench/results), BENCH_KEEP_WORK (0),
# BENCH_RECURSE (1: with the RECURSE rows; 0: without; only: the RECURSE rows alone).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECONDS_PER_ROW=${BENCH_SECONDS:-10}
THREADS_LIST=${BENCH_THREADS:-"1 2"}
CLIENTS=${BENCH_CLIENTS:-8}
OUTSTANDING=${BENCH_OUTSTANDING:-500}
SERVERS=${BENCH_SERVERS:-"reflector unbound dnsmasq names nsd"}
MEMORY_NAMES=${BENCH_MEMORY_NAMES:-100000}
PORT_BASE=${BENCH_PORT_BASE:-15353}
OUT=${BENCH_OUT:-$HERE/results}
LIB="python3 $HERE/benchlib.py"
RECURSE=${BENCH_RECURSE:-1}

case "$SECONDS_PER_ROW" in '' | *[!0-9]*) echo "compare.sh: BENCH_SECONDS must be a whole number" >&2; exit 2 ;; esac
if [ "$SECONDS_PER_ROW" -lt 1 ] || [ "$SECONDS_PER_ROW" -gt 600 ]; then
    echo "compare.sh: BENCH_SECONDS must be 1..600" >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/names-bench.XXXXXX)
PIDS=()

# Stops one process (and the children it forked, e.g. NSD's servers) by PID: TERM, then KILL.
stop_pid() {
    local pid=$1 all p i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    all=$($LIB tree "$pid" 2>/dev/null || echo "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    for p in $all; do
        kill -KILL "$p" 2>/dev/null || true
    done
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [ "${BENCH_KEEP_WORK:-0}" = 1 ]; then
        echo "work files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }

# ------------------------------------------------------------------ install and build
if [ "${BENCH_INSTALL:-1}" = 1 ]; then
    missing=""
    for tool in dnsperf unbound dnsmasq nsd gnuplot; do
        command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null 2>&1 || missing=1
    done
    if [ -n "$missing" ]; then
        log "installing dnsperf unbound dnsmasq nsd gnuplot-nox"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf unbound dnsmasq nsd gnuplot-nox >/dev/null
    fi
fi
export PATH=$PATH:/usr/sbin:/sbin
for tool in dnsperf unbound dnsmasq nsd gnuplot python3; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool not found (BENCH_INSTALL=1 installs it)" >&2; exit 1; }
done

if [ "${BENCH_BUILD:-1}" = 1 ]; then
    log "building names and the reflector (release)"
    (cd "$ROOT" && cargo build --release -q -p names-shell --bin names --example reflector)
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
NAMES=$TARGET/release/names
REFLECTOR=$TARGET/release/examples/reflector
[ -x "$NAMES" ] && [ -x "$REFLECTOR" ] || { echo "compare.sh: $NAMES or $REFLECTOR missing" >&2; exit 1; }

# What this build of names supports (flags being added by other issues).
NAMES_HELP=$("$NAMES" serve --help 2>&1 || true)
has_flag() { grep -q -- "$1" <<<"$NAMES_HELP"; }
NAMES_CACHE_ARGS=()
NAMES_MEM_CACHE_ARGS=()
HAS_CACHE=0
if has_flag "--cache-size"; then
    HAS_CACHE=1
    NAMES_CACHE_ARGS=(--cache-size 10000)
    NAMES_MEM_CACHE_ARGS=(--cache-size $((MEMORY_NAMES * 2 + 1000)))
fi
HAS_ZONE=0
has_flag "--zone" && HAS_ZONE=1
# Logging off (errors only), where this build has the flag.
NAMES_LOG_ARGS=()
has_flag "--log-level" && NAMES_LOG_ARGS=(--log-level error)

# ------------------------------------------------------------------ files and ports
read -r P_UP P_SRV P_ZONE P_REFL <<<"$($LIB ports "$PORT_BASE" 4)"
ZONEFILE=$WORK/bench.test.zone
cp "$HERE/bench.test.zone" "$ZONEFILE"
Q_CACHE=$WORK/cache.txt
Q_ZONE=$WORK/zone.txt
Q_SYNTH=$WORK/synth.txt
Q_PROBE=$WORK/probe.txt
$LIB queries cache 1000 "$Q_CACHE"
$LIB queries zone 1000 "$Q_ZONE"
$LIB queries synth 1024 "$Q_SYNTH"
# Enough never-asked names for the whole row at 100k answers per second (dnsperf -n 1 stops
# early if a server is faster than that; the rate is still right).
MISS_COUNT=$((SECONDS_PER_ROW * 100000))
TSV=$WORK/rows.tsv
MEM=$WORK/memory.tsv
META=$WORK/meta.md
: >"$TSV"

{
    echo "- command: \`BENCH_SECONDS=$SECONDS_PER_ROW BENCH_THREADS=\"$THREADS_LIST\" tests/bench/compare.sh\`" \
        "(dnsperf -c $CLIENTS -q $OUTSTANDING, $SECONDS_PER_ROW s per row, UDP, 127.0.0.1)"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uname -sr)"
    echo "- versions: names $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')," \
        "$(unbound -V 2>/dev/null | head -1 | sed 's/Version/Unbound/')," \
        "$(dnsmasq --version | head -1 | awk '{print "dnsmasq " $3}')," \
        "$(nsd -v 2>&1 | head -1)," \
        "$(dnsperf -h 2>&1 | grep -m1 Version | sed 's/Version/dnsperf/')"
    if [ "$HAS_CACHE" = 0 ]; then
        echo "- NOTE: this names build has no --cache-size: its CACHE-HIT rows forward every query."
    fi
    if [ "$HAS_ZONE" = 0 ]; then
        echo "- NOTE: this names build has no --zone: no names ZONE rows."
    fi
    echo "- load average before the run (other work on the machine skews every figure): $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- CPU per answer = server (utime+stime) over the row / answers; dnsperf shares the same cores." \
        "Peak RSS = VmHWM over the row (reset before it). NSD figures are its whole process tree."
} >"$META"

# ------------------------------------------------------------------ process helpers
SERVER_PID=""

# start NAME PORT CMD...: starts a server in the background, records its PID.
start() {
    local name=$1 port=$2
    shift 2
    "$@" >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_ready "$name" "$port" "$SERVER_PID"
}

# Waits (at most 10 s) until the server (on ADDR, 127.0.0.1 by default) answers one query.
wait_ready() {
    local name=$1 port=$2 pid=$3 addr=${4:-127.0.0.1} i
    local probe
    case "$name" in
        nsd-r*) probe="bench.test SOA" ;;
        nsd* | names-zone*) probe="host1.bench.test A" ;;
        *) probe="ready.bench.test A" ;;
    esac
    echo "$probe" >"$Q_PROBE"
    for i in $(seq 1 50); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "compare.sh: $name exited at start; its log:" >&2
            tail -20 "$WORK/$name.log" >&2
            exit 1
        fi
        if timeout 5 dnsperf -s "$addr" -p "$port" -d "$Q_PROBE" -n 1 -t 1 2>/dev/null |
            grep -q "Queries completed: *1 "; then
            return 0
        fi
        sleep 0.2
    done
    echo "compare.sh: $name on port $port did not answer within 10 s; its log:" >&2
    tail -20 "$WORK/$name.log" >&2
    exit 1
}

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
}

# dnsperf_run PORT FILE OUTFILE [extra args]: one bounded dnsperf run.
dnsperf_run() {
    local port=$1 file=$2 out=$3
    shift 3
    timeout $((SECONDS_PER_ROW + 60)) dnsperf -s 127.0.0.1 -p "$port" -d "$file" \
        -c "$CLIENTS" -q "$OUTSTANDING" -t 1 "$@" >"$out" 2>&1 || {
        echo "compare.sh: dnsperf failed against port $port:" >&2
        tail -5 "$out" >&2
        return 1
    }
}

# measure SERVER WORKLOAD THREADS PORT FILE [dnsperf args]: one timed row of the table.
measure() {
    local server=$1 workload=$2 threads=$3 port=$4 file=$5
    shift 5
    local out=$WORK/dnsperf-$server-$workload-$threads.txt t0 t1
    $LIB reset-peak "$SERVER_PID"
    t0=$($LIB ticks "$SERVER_PID")
    dnsperf_run "$port" "$file" "$out" -l "$SECONDS_PER_ROW" "$@"
    t1=$($LIB ticks "$SERVER_PID")
    $LIB row --tsv "$TSV" --server "$server" --workload "$workload" --threads "$threads" \
        --ticks0 "$t0" --ticks1 "$t1" --hwm "$($LIB kib "$SERVER_PID" VmHWM)" --dnsperf-out "$out"
}

# Asks every name of FILE, gently, so the following timed run is all cache hits: a second
# pass asks again the few a busy forwarder may have lost in the first.
warm() {
    local port=$1 file=$2
    dnsperf_run "$port" "$file" "$WORK/warm.txt" -n 1 -c 2 -q 20
    dnsperf_run "$port" "$file" "$WORK/warm.txt" -n 1 -c 2 -q 20
    grep -q "Queries completed: *1000 " "$WORK/warm.txt" ||
        log "warning: the second warming pass lost queries: $(grep 'Queries completed' "$WORK/warm.txt")"
}

fill_conf() { # template out key=value...
    local tmpl=$1 out=$2 expr=""
    shift 2
    local kv
    for kv in "$@"; do expr="$expr;s|@${kv%%=*}@|${kv#*=}|g"; done
    sed "${expr#;}" "$tmpl" >"$out"
}

start_nsd() { # tag port count
    fill_conf "$HERE/nsd.conf" "$WORK/nsd-$1.conf" WORK="$WORK" PORT="$2" COUNT="$3" TAG="$1" ZONEFILE="$ZONEFILE"
    start "nsd-$1" "$2" nsd -d -c "$WORK/nsd-$1.conf"
}

start_unbound() { # threads port
    fill_conf "$HERE/unbound.conf" "$WORK/unbound.conf" WORK="$WORK" PORT="$2" THREADS="$1" UPSTREAM="$P_UP"
    start unbound "$2" unbound -d -c "$WORK/unbound.conf"
}

start_dnsmasq() { # port
    start dnsmasq "$1" dnsmasq -k -C /dev/null --user=root --no-resolv --no-hosts --no-poll \
        --listen-address=127.0.0.1 --bind-interfaces --port="$1" --server="127.0.0.1#$P_UP" \
        --cache-size=10000 --dns-forward-max=1000 --pid-file="$WORK/dnsmasq.pid"
}

start_names() { # threads port [extra flags]
    local threads=$1 port=$2
    shift 2
    start names "$port" "$NAMES" serve --listen "127.0.0.1:$port" --upstream "127.0.0.1:$P_UP" \
        --workers "$threads" --synth workstation=172.0.2 "${NAMES_LOG_ARGS[@]}" "$@"
}

# Whether SERVER runs in the forwarding, zone and memory rows; in_run: in any row.
in_run() { [[ " $SERVERS " == *" $1 "* ]]; }
wants() { [ "$RECURSE" != only ] && in_run "$1"; }

# ------------------------------------------------------------------ the upstream
log "upstream: NSD on 127.0.0.1:$P_UP serving bench.test"
start_nsd upstream "$P_UP" 1
UPSTREAM_PID=$SERVER_PID
SERVER_PID=""

# ------------------------------------------------------------------ the rows
if wants reflector; then
    log "reflector on 127.0.0.1:$P_REFL"
    start reflector "$P_REFL" "$REFLECTOR" "127.0.0.1:$P_REFL"
    measure reflector LIMIT 1 "$P_REFL" "$Q_CACHE"
    stop_server
fi

for threads in $THREADS_LIST; do
    case "$threads" in '' | *[!0-9]*) echo "compare.sh: bad thread count $threads" >&2; exit 2 ;; esac
    for server in unbound dnsmasq names; do
        wants "$server" || continue
        if [ "$server" = dnsmasq ] && [ "$threads" != 1 ]; then
            continue # single-threaded by design
        fi
        log "$server, $threads thread(s), on 127.0.0.1:$P_SRV"
        case "$server" in
            unbound) start_unbound "$threads" "$P_SRV" ;;
            dnsmasq) start_dnsmasq "$P_SRV" ;;
            names) start_names "$threads" "$P_SRV" "${NAMES_CACHE_ARGS[@]}" ;;
        esac
        warm "$P_SRV" "$Q_CACHE"
        measure "$server" CACHE-HIT "$threads" "$P_SRV" "$Q_CACHE"
        $LIB queries miss "$MISS_COUNT" "$WORK/miss.txt"
        measure "$server" FORWARD-MISS "$threads" "$P_SRV" "$WORK/miss.txt" -n 1
        if [ "$server" = names ]; then
            measure names SYNTH "$threads" "$P_SRV" "$Q_SYNTH"
        fi
        stop_server
    done

    if wants nsd; then
        log "NSD (ZONE), $threads server(s), on 127.0.0.1:$P_ZONE"
        start_nsd "zone$threads" "$P_ZONE" "$threads"
        measure nsd ZONE "$threads" "$P_ZONE" "$Q_ZONE"
        stop_server
    fi
    if wants names && [ "$HAS_ZONE" = 1 ]; then
        log "names --zone (ZONE), $threads worker(s), on 127.0.0.1:$P_ZONE"
        start names-zone "$P_ZONE" "$NAMES" serve --listen "127.0.0.1:$P_ZONE" --workers "$threads" \
            --zone "$ZONEFILE" --no-forward "${NAMES_LOG_ARGS[@]}"
        measure names ZONE "$threads" "$P_ZONE" "$Q_ZONE"
        stop_server
    fi
done

# ------------------------------------------------------------------ RECURSE: from the root
# NSD serves the root on $H.1, test. on $H.2 and bench.test (its wildcard answering every cold
# name) on $H.3, one zone each at port 53, so every level refers to the next.
if [ "$RECURSE" != 0 ] && has_flag "--recursive"; then
    H=127.53.255
    HINTS=$WORK/root.hints
    printf '.\t3600000\tNS\ta.root.\na.root.\t3600000\tA\t%s.1\n' "$H" >"$HINTS"
    soa() { echo "\$TTL 86400"; echo "$1 SOA $2 hostmaster.${1#.} 1 3600 600 86400 300"; }
    { soa . a.root.; echo ". NS a.root."; echo "a.root. A $H.1"; echo "test. NS ns.test."; echo "ns.test. A $H.2"; } >"$WORK/r-root.zone"
    { soa test. ns.test.; echo "test. NS ns.test."; echo "ns.test. A $H.2"
      echo "bench.test. NS ns.bench.test."; echo "ns.bench.test. A $H.3"; } >"$WORK/r-test.zone"
    # The same bench.test, its name server at its hierarchy address.
    sed "s/^ns      IN A    127.0.0.1/ns      IN A    $H.3/" "$ZONEFILE" >"$WORK/r-bench.zone"
    HIERARCHY_PIDS=()
    for level in "1 . r-root.zone" "2 test. r-test.zone" "3 bench.test. r-bench.zone"; do
        read -r k zone file <<<"$level"
        fill_conf "$HERE/nsd-recurse.conf" "$WORK/nsd-r$k.conf" WORK="$WORK" IP="$H.$k" TAG="r$k" \
            ZONE="$zone" ZONEFILE="$WORK/$file"
        nsd -d -c "$WORK/nsd-r$k.conf" >"$WORK/nsd-r$k.log" 2>&1 &
        PIDS+=("$!")
        HIERARCHY_PIDS+=("$!")
        wait_ready "nsd-r$k" 53 "$!" "$H.$k"
    done
    for threads in $THREADS_LIST; do
        for server in unbound names; do
            in_run "$server" || continue
            log "$server recursing, $threads thread(s), on 127.0.0.1:$P_SRV"
            case "$server" in
                unbound)
                    fill_conf "$HERE/unbound-recurse.conf" "$WORK/unbound-recurse.conf" WORK="$WORK" \
                        PORT="$P_SRV" THREADS="$threads" HINTS="$HINTS"
                    start unbound "$P_SRV" unbound -d -c "$WORK/unbound-recurse.conf"
                    ;;
                names)
                    start names "$P_SRV" "$NAMES" serve --listen "127.0.0.1:$P_SRV" --workers "$threads" \
                        --recursive --query-localhost --root-hints "$HINTS" "${NAMES_CACHE_ARGS[@]}" \
                        "${NAMES_LOG_ARGS[@]}"
                    ;;
            esac
            $LIB queries miss "$MISS_COUNT" "$WORK/miss.txt"
            measure "$server" RECURSE-COLD "$threads" "$P_SRV" "$WORK/miss.txt" -n 1
            warm "$P_SRV" "$Q_CACHE"
            measure "$server" RECURSE-WARM "$threads" "$P_SRV" "$Q_CACHE"
            stop_server
        done
    done
    for pid in "${HIERARCHY_PIDS[@]}"; do
        stop_pid "$pid"
    done
fi

# ------------------------------------------------------------------ memory per cached name
if [ "$MEMORY_NAMES" -gt 0 ]; then
    $LIB queries mem "$MEMORY_NAMES" "$WORK/mem.txt"
    for server in unbound names; do
        wants "$server" || continue
        if [ "$server" = names ] && [ "$HAS_CACHE" = 0 ]; then
            log "memory: names has no --cache-size in this build; skipped"
            continue
        fi
        log "memory: $server caching $MEMORY_NAMES names"
        case "$server" in
            unbound) start_unbound 1 "$P_SRV" ;;
            names) start_names 1 "$P_SRV" "${NAMES_MEM_CACHE_ARGS[@]}" ;;
        esac
        sleep 0.5
        idle=$($LIB kib "$SERVER_PID" VmRSS)
        # A moderate rate, so few queries are lost: each name is cached once. At most 240 s;
        # the figure is per name actually answered.
        timeout 300 dnsperf -s 127.0.0.1 -p "$P_SRV" -d "$WORK/mem.txt" -n 1 -l 240 -c 4 -q 100 -t 2 \
            >"$WORK/mem-$server.txt" 2>&1
        sleep 0.5
        after=$($LIB kib "$SERVER_PID" VmRSS)
        answered=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$WORK/mem-$server.txt")
        echo "$server ${answered:-0} $idle $after" >>"$MEM"
        stop_server
    done
fi

stop_pid "$UPSTREAM_PID"

# ------------------------------------------------------------------ report
mkdir -p "$OUT"
$LIB report --tsv "$TSV" --mem "$MEM" --meta "$META" --outdir "$OUT" \
    --title "$(date -u +%Y-%m-%d), ${SECONDS_PER_ROW} s per row"
cp "$TSV" "$OUT/compare.tsv"
