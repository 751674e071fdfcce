#!/usr/bin/env bash
# appliance/bench/run.sh - softswitch vs Kamailio under the same sipp load.
#
#   bash appliance/bench/run.sh [--out FILE] [--bin PATH] [--systems LIST]
#                               [--quick] [--keep] [-h]
#
# Topology (all on 127.0.0.1, ports picked free at run time):
#   sipp UAC (uac.xml) -> server under test -> sipp UAS "gateway" (uas.xml)
# The server is pinned to CPU 0, every sipp (and the latency capture) to CPU 1.
#
# For each system (softswitch, then Kamailio with kamailio.cfg) it measures:
#   1. the highest call rate with < 0.1 % failed calls: doubling from
#      START_RATE, then bisecting; each step is STEP_SECONDS worth of calls;
#      stops early when sipp cannot generate the target rate ("sipp was the
#      limit");
#   2. server CPU time per call: utime+stime delta of the server's process
#      tree (/proc/PID/stat) over FIXED_SECONDS at FIXED_RATE / completed calls;
#   3. INVITE->200 latency p50/p99 in that same fixed-rate run, captured on the
#      wire by sipcap.py (sipp's own RTD clock has 4 ms steps here);
#   4. RSS and PSS (smaps_rollup, summed over the process tree) with HOLD_CALLS
#      concurrent held calls (uac_hold.xml), on a freshly restarted server;
#   5. CPU per call and latency again at FIXED_RATE2 calls/s;
#   6. the overload run: offered load OVER_MULTS times the clean rate, each
#      OVER_SECONDS long, twice the clean rate OVER_SECONDS_2X long (the
#      issue's target is 60 s there) (uac_overload.xml: a 503 is ACKed, not a failure),
#      goodput = calls the gateway completed per second, OPTIONS from a
#      second sipp at 10/s throughout; drawn with gnuplot to --plot FILE;
#   7. recovery: twice the clean rate for RECOVERY_SECONDS (a UAC at 1.5x
#      and one at 0.5x), then the 0.5x UAC alone as long again; the 0.5x
#      UAC runs uac.xml (a 503 is a failure there), and the seconds from
#      the drop to its last failure say when the switch was back to normal.
# System softswitch-nocdr is the softswitch with CDRs off ([billing]
# enabled = false): steps 1, 2, 3 and 5 only, for the cost of CDRs (the
# softswitch system runs with CDRs on, the default). Kamailio's acc module
# writes its lines to its log file in the same run. System
# softswitch-radius is the softswitch with RADIUS accounting (Start and
# Stop per call) to a FreeRADIUS on the load CPU, writing its detail file:
# steps 1, 2, 3 and 5, for the cost of accounting.
# Then prints a markdown report (and writes it to --out FILE).
#
# CPU_BUDGET=N gives each server N % of one core (a cgroup cpu quota, the
# same for both): use it when sipp is the limit, so that the server is what
# the clean rate measures.
#
# Environment knobs (defaults in brackets):
#   BIN [build ./cmd/softswitch]   START_RATE [200]   MAX_RATE [12800]
#   STEP_SECONDS [8]   BISECT_STEPS [4]   FIXED_RATE [500]   FIXED_SECONDS [10]
#   HOLD_CALLS [10000]   HOLD_RATE [1000]   SERVER_CPU [0]   LOAD_CPU [1]
#   KAM_SHM_MB [1024]   KAM_PKG_MB [32]   KAM_CHILDREN [4]   KAM_MEM [tlsf]
#   SEARCH_BUDGET [240] seconds per system for the rate search
#   FIXED_RATE2 [2000]   OVER_MULTS ["0.5 1 1.5 2 2.5 3"]   OVER_SECONDS [20]
#   OVER_SECONDS_2X [60] seconds of the step at twice the clean rate
#   RECOVERY_SECONDS [20] seconds of the recovery run's surge and of its tail
#   CPU_BUDGET [] percent of one core for each server (cgroup cpu quota)
#   BASELINE [1] also measure sipp->sipp latency without a server in between
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

OUT=""
PLOT=""
CGROUP=""              # the cpu cgroup of CPU_BUDGET
BIN="${BIN:-}"
SYSTEMS="softswitch,softswitch-nocdr,softswitch-radius,kamailio"
KEEP=0
START_RATE=${START_RATE:-200}
MAX_RATE=${MAX_RATE:-12800}
STEP_SECONDS=${STEP_SECONDS:-8}
BISECT_STEPS=${BISECT_STEPS:-4}
MAX_SEARCH_STEPS=${MAX_SEARCH_STEPS:-12}
SEARCH_BUDGET=${SEARCH_BUDGET:-240}
FIXED_RATE=${FIXED_RATE:-500}
FIXED_SECONDS=${FIXED_SECONDS:-10}
HOLD_CALLS=${HOLD_CALLS:-10000}
HOLD_RATE=${HOLD_RATE:-1000}
FIXED_RATE2=${FIXED_RATE2:-2000}
OVER_MULTS=${OVER_MULTS:-"0.5 1 1.5 2 2.5 3"}
OVER_SECONDS=${OVER_SECONDS:-20}
OVER_SECONDS_2X=${OVER_SECONDS_2X:-60}
RECOVERY_SECONDS=${RECOVERY_SECONDS:-20}
CPU_BUDGET=${CPU_BUDGET:-}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
KAM_SHM_MB=${KAM_SHM_MB:-1024}
KAM_PKG_MB=${KAM_PKG_MB:-32}
KAM_CHILDREN=${KAM_CHILDREN:-4}
KAM_MEM=${KAM_MEM:-tlsf}
BASELINE=${BASELINE:-1}
SIPP_BUF=4194304        # sipp -buff_size (capped by net.core.rmem_max)
SETTLE=5                # seconds between load runs

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=${2:?--out needs a file}; shift 2 ;;
        --out=*) OUT=${1#--out=}; shift ;;
        --plot) PLOT=${2:?--plot needs a file}; shift 2 ;;
        --plot=*) PLOT=${1#--plot=}; shift ;;
        --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
        --bin=*) BIN=${1#--bin=}; shift ;;
        --systems) SYSTEMS=${2:?--systems needs a list}; shift 2 ;;
        --systems=*) SYSTEMS=${1#--systems=}; shift ;;
        --quick) START_RATE=400; STEP_SECONDS=3; BISECT_STEPS=1; FIXED_SECONDS=4
                 HOLD_CALLS=2000; SEARCH_BUDGET=90; OVER_SECONDS=5; OVER_SECONDS_2X=5; OVER_MULTS="1 2"
                 RECOVERY_SECONDS=10; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$OUT" ] && case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
[ -n "$PLOT" ] && case "$PLOT" in /*) ;; *) PLOT="$PWD/$PLOT" ;; esac
[ -n "$BIN" ] && case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ssbench.XXXXXX") || die "mktemp failed"
PIDS=()
SERVER_PID=""
SERVER_KIDS=""

forget_pid() {          # drop a reaped child from PIDS (its number may be reused)
    local p keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

stop_pid() {            # stop_pid PID [seconds]: TERM, wait (bounded), KILL; PID is our child
    local pid=$1 lim=$(( ${2:-5} * 10 )) i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < lim; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    forget_pid "$pid"
    return 0
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do stop_pid "$p" 3; done
    for p in ${SERVER_KIDS:-}; do       # Kamailio workers left behind by a killed main process
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = kamailio ] && kill -KILL "$p" 2>/dev/null
    done
    [ -n "$CGROUP" ] && rmdir "$CGROUP" 2>/dev/null
    if [ "$KEEP" = 1 ]; then
        log "kept work dir: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- preflight
# need TOOL PACKAGE: install PACKAGE from Debian when TOOL is missing (as
# root), so that a fresh machine runs the bench with one command.
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing $2 (for $1) ..."
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1; }
    fi
    command -v "$1" >/dev/null 2>&1 || die "$1 not found (Debian package $2)"
}
need sipp sip-tester
need ss iproute2
need taskset util-linux
for t in python3 timeout pgrep awk; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found"
done
case ",$SYSTEMS," in *,kamailio,*) need kamailio kamailio ;; esac
case ",$SYSTEMS," in *,softswitch-radius,*) need freeradius freeradius ;; esac
NCPU=$(nproc)
[ "$NCPU" -ge 2 ] || die "needs at least 2 CPUs (server on CPU $SERVER_CPU, sipp on CPU $LOAD_CPU)"
CLK_TCK=$(getconf CLK_TCK)
CAPTURE_OK=1
[ "$(id -u)" = 0 ] || { CAPTURE_OK=0; log "not root: no latency capture (sipcap.py needs a raw socket)"; }
RMEM_MAX=$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo 0)

# ---------------------------------------------------------------- helpers
free_ports() {          # free_ports N -> N distinct free UDP ports on 127.0.0.1
    python3 - "$1" <<'EOF'
import socket, sys
n = int(sys.argv[1]); socks = []; ports = []
while len(ports) < n:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s); ports.append(s.getsockname()[1])
print(" ".join(map(str, ports)))
EOF
}

udp_bound() { ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; }

wait_udp_bound() {      # wait_udp_bound PORT PID SECONDS
    local port=$1 pid=$2 lim=$(( $3 * 10 )) i
    for ((i = 0; i < lim; i++)); do
        kill -0 "$pid" 2>/dev/null || return 2
        udp_bound "$port" && return 0
        sleep 0.1
    done
    return 1
}

wait_udp_drained() {    # wait (<= SECONDS) until the server socket's receive queue is empty
    local port=$1 lim=$(( $2 * 10 )) i q
    for ((i = 0; i < lim; i++)); do
        q=$(ss -Hlun "sport = :$port" 2>/dev/null | awk '{s += $2} END {print s + 0}')
        [ "$q" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}

udp_drops() {           # datagrams the kernel dropped on the server's UDP socket(s) so far
    ss -Hunam "sport = :$1" 2>/dev/null | grep -o ',d[0-9]*)' | tr -dc '0-9\n' | awk '{s += $1} END {print s + 0}'
}

tree_pids() {           # PID and all its descendants
    local p=$1 c
    [ -d "/proc/$p" ] || return 0
    echo "$p"
    for c in $(pgrep -P "$p" 2>/dev/null); do tree_pids "$c"; done
}

cpu_ticks() {           # utime+stime (clock ticks) summed over the given PIDs
    local p t=0 v
    for p in "$@"; do
        v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
        t=$(( t + ${v:-0} ))
    done
    echo "$t"
}

mem_kb() {              # "RSS_kB PSS_kB" summed over the given PIDs
    local p r=0 s=0 v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null); r=$(( r + ${v:-0} ))
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null); s=$(( s + ${v:-0} ))
    done
    echo "$r $s"
}

cpu_snap() {            # "cpuN busy idle steal" (ticks) for the server and the load CPU
    awk -v a="cpu$SERVER_CPU" -v b="cpu$LOAD_CPU" '$1 == a || $1 == b {print $1, $2+$3+$4+$7+$8, $5+$6, $9}' /proc/stat
}

busy_pct() {            # busy_pct "SNAP0" "SNAP1" CPUNAME [steal] -> percent busy (or stolen by the hypervisor)
    printf '%s\n%s\n' "$1" "$2" | awk -v c="$3" -v what="${4:-busy}" '$1 == c {
            if (n++) { b = $2 - b; i = $3 - i; s = $4 - s } else { b = $2; i = $3; s = $4 } }
        END { t = b + i + s; if (t <= 0) { print "?"; exit }
              printf "%.0f", 100 * (what == "steal" ? s : b) / t }'
}

now_ms() { date +%s%3N; }

stat_field() {          # stat_field SIPP_STAT_CSV COLUMN_NAME -> value in the last complete row
    [ -s "$1" ] || { echo 0; return; }
    awk -F';' -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; nf = NF; next }
        NF >= nf - 1 && c { v = $c } END { print (v == "" ? 0 : v) }' "$1"
}

stat_max() {            # maximum of a column over all rows
    [ -s "$1" ] || { echo 0; return; }
    awk -F';' -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
        c && $c + 0 > m { m = $c + 0 } END { print m + 0 }' "$1"
}

achieved_rate() {       # achieved_rate UAC_STAT_CSV CALLS -> calls/s sipp generated
    # = calls created / elapsed at the last 1-s stats row written while sipp was
    #   still creating calls (the row after the last call would overstate the time)
    [ -s "$1" ] || { echo 0; return; }
    awk -F';' -v n="$2" '
        function epoch(f,   a) { split(f, a, "\t"); return a[3] + 0 }
        NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "StartTime") cs = i; if ($i == "CurrentTime") ct = i
                                             if ($i == "OutgoingCall(C)") co = i }; next }
        NF < co { next }
        { t = epoch($ct); c = $co + 0
          if (!started) { start = epoch($cs); started = 1 }
          if (done) next
          if (c >= n) { done = 1; if (!bc) { bc = c; bt = t } ; next }
          if (c > 0) { bc = c; bt = t } }
        END { if (bt > start) printf "%.0f", bc / (bt - start); else print 0 }' "$1"
}

fail_summary() {        # fail_summary UAC_STAT UAC_ERRLOG UAS_ERRLOG -> why calls failed, briefly
    local out="" v f
    for f in "FailedTimeoutOnRecv(C):recv timeout" "FailedMaxUDPRetrans(C):max retransmissions" \
             "FailedUnexpectedMessage(C):unexpected message" "FailedCallRejected(C):rejected"; do
        v=$(stat_field "$1" "${f%%:*}")
        [ "${v:-0}" != 0 ] && out="${out:+$out, }${f#*:} x$v"
    done
    v=$(cat "$2" "$3" 2>/dev/null |
        grep -aoE "while expecting '[^']*' \(index [0-9]+\), received '(SIP/2\.0 [0-9]{3}|[A-Z]+)" |
        sed -E "s/while expecting '([^']*)' \(index [0-9]+\), received '(SIP\/2\.0 )?/\1:/" |
        sort | uniq -c | sort -rn | head -n 3 |
        awk '{split($2, a, ":"); printf "%s%s instead of %s x%d", (NR > 1 ? ", " : ""), a[2], a[1], $1}')
    [ -n "$v" ] && out="${out:+$out; }got $v"
    echo "$out"
}

fmt_mb() { [ -n "${1:-}" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo "n/a"; }

ratio() {               # ratio A B -> A/B with 2 decimals, or n/a
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
        if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) { print "n/a"; exit }
        printf "%.2f", a / b }'
}

# ---------------------------------------------------------------- results
declare -A RES          # RES[system,key]
declare -A NOISY        # runs where the server CPU was busier than the server itself
declare -A STEAL_MAX    # highest hypervisor steal seen on the server CPU
NOTES=()                # free-text notes for the report
STEPS_MD=()             # rows of the step log
OVER_MD=()              # rows of the overload run
RECOVERY_MD=()          # rows of the recovery run

note() { NOTES+=("$*"); log "note: $*"; }

# ---------------------------------------------------------------- one load run
# run_load TAG RATE CALLS SCENARIO HOLD_MS CAPTURE
#   Runs UAS + UAC (+ optional latency capture) against SERVER_PORT and sets
#   R_* globals.  With HOLD_MS > 0 it also samples the server's memory once
#   all calls are up (R_RSS, R_PSS, R_UP).
run_load() {
    local tag=$1 rate=$2 calls=$3 scen=$4 hold_ms=$5 capture=$6
    local dir="$TMP/$SYS/$tag" secs limit uas_to uac_to uas_pid uac_pid cap_pid=""
    local t0 t1 s0 s1 w0 w1 d0 i n succ_uac succ_uas spids
    mkdir -p "$dir"
    secs=$(( (calls + rate - 1) / rate ))
    if [ "$hold_ms" -gt 0 ]; then limit=$(( calls + 1000 )); else limit=$(( rate * 3 > 3000 ? rate * 3 : 3000 )); fi
    uac_to=$(( secs + hold_ms / 1000 + 25 ))
    uas_to=$(( uac_to + 10 ))
    R_CREATED=0 R_SUCC=0 R_FAILED=$calls R_FAILPCT=100 R_ACH=0 R_BUSY_S="?" R_BUSY_L="?" R_TICKS=0
    R_MAXCUR=0 R_LIMIT=$limit R_RETRANS=0 R_ERRS="" R_RSS="" R_PSS="" R_UP=0 R_CAP="" R_STEAL="?" R_SRV_PCT="?" R_DROPS=0

    (cd "$dir" && exec timeout -k 5 $(( uas_to + 15 )) taskset -c "$LOAD_CPU" sipp -sf "$HERE/uas.xml" \
        -i 127.0.0.1 -p "$GW_PORT" -m $(( calls * 2 + 1000 )) -recv_timeout $(( hold_ms + 15000 )) \
        -timeout "$uas_to" -nostdin -buff_size "$SIPP_BUF" -trace_stat -fd 1 -stf uas.csv \
        -trace_err -error_file uas_errors.log >uas.out 2>&1) &
    uas_pid=$!; PIDS+=("$uas_pid")
    if ! wait_udp_bound "$GW_PORT" "$uas_pid" 10; then
        log "UAS did not start (port $GW_PORT): $(tail -c 300 "$dir/uas.out" 2>/dev/null)"
        stop_pid "$uas_pid"; return 1
    fi

    if [ "$capture" = 1 ] && [ "$CAPTURE_OK" = 1 ]; then
        taskset -c "$LOAD_CPU" python3 "$HERE/sipcap.py" --port "$UAC_PORT" --out "$dir/cap.txt" \
            --ready-file "$dir/cap.ready" --max-seconds $(( uas_to + 30 )) >"$dir/cap.out" 2>&1 &
        cap_pid=$!; PIDS+=("$cap_pid")
        for ((i = 0; i < 50; i++)); do [ -e "$dir/cap.ready" ] && break; sleep 0.1; done
    fi

    spids=$(tree_pids "$SERVER_PID")
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $spids); s0=$(cpu_snap); w0=$(now_ms); d0=$(udp_drops "$SERVER_PORT")

    (cd "$dir" && exec timeout -k 5 $(( uac_to + 15 )) taskset -c "$LOAD_CPU" sipp -sf "$HERE/$scen" \
        -i 127.0.0.1 -p "$UAC_PORT" "127.0.0.1:$SERVER_PORT" -r "$rate" -m "$calls" -l "$limit" \
        -d "$hold_ms" -recv_timeout 10000 -timeout "$uac_to" -nostdin -buff_size "$SIPP_BUF" \
        -trace_stat -fd 1 -stf uac.csv -trace_err -error_file uac_errors.log >uac.out 2>&1) &
    uac_pid=$!; PIDS+=("$uac_pid")

    if [ "$hold_ms" -gt 0 ]; then
        # wait until all calls are up (both legs), bounded by ramp time + 10 s
        for ((i = 0; i < (secs + 10) * 5; i++)); do
            kill -0 "$uac_pid" 2>/dev/null || break
            n=$(stat_field "$dir/uas.csv" CurrentCall)
            [ "${n:-0}" -ge "$calls" ] && break
            [ $(( (i + 1) * 200 )) -ge $(( secs * 1000 + hold_ms - 3000 )) ] && break   # BYEs are near
            sleep 0.2
        done
        sleep 1
        R_UP=$(stat_field "$dir/uas.csv" CurrentCall)
        # shellcheck disable=SC2086
        read -r R_RSS R_PSS <<<"$(mem_kb $(tree_pids "$SERVER_PID"))"
        log "  held calls up: $R_UP; server RSS $(fmt_mb "$R_RSS") MB, PSS $(fmt_mb "$R_PSS") MB"
    fi

    wait "$uac_pid" 2>/dev/null
    forget_pid "$uac_pid"
    stop_uas "$uas_pid" "$dir/uas.csv"
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $spids); s1=$(cpu_snap); w1=$(now_ms); R_DROPS=$(( $(udp_drops "$SERVER_PORT") - d0 ))
    if [ -n "$cap_pid" ]; then stop_pid "$cap_pid" 5; R_CAP="$dir/cap.txt"; fi

    R_CREATED=$(stat_field "$dir/uac.csv" TotalCallCreated)
    succ_uac=$(stat_field "$dir/uac.csv" "SuccessfulCall(C)")
    succ_uas=$(stat_field "$dir/uas.csv" "SuccessfulCall(C)")
    R_SUCC=$(( succ_uac < succ_uas ? succ_uac : succ_uas ))
    R_SUCC_UAS=${succ_uas:-0} R_FAILED_UAC=$(stat_field "$dir/uac.csv" "FailedCall(C)")
    R_FAILED=$(( calls - R_SUCC )); [ "$R_FAILED" -lt 0 ] && R_FAILED=0
    R_FAILPCT=$(awk -v f="$R_FAILED" -v n="$calls" 'BEGIN { printf "%.3f", 100 * f / n }')
    R_ACH=$(achieved_rate "$dir/uac.csv" "$calls")
    R_MAXCUR=$(stat_max "$dir/uac.csv" CurrentCall)
    R_RETRANS=$(stat_field "$dir/uac.csv" "Retransmissions(C)")
    R_TICKS=$(( t1 - t0 ))
    R_BUSY_S=$(busy_pct "$s0" "$s1" "cpu$SERVER_CPU")
    R_BUSY_L=$(busy_pct "$s0" "$s1" "cpu$LOAD_CPU")
    R_STEAL=$(busy_pct "$s0" "$s1" "cpu$SERVER_CPU" steal)
    R_SRV_PCT=$(awk -v t="$R_TICKS" -v hz="$CLK_TCK" -v ms=$(( w1 - w0 )) 'BEGIN { if (ms > 0) printf "%.0f", 100 * t / hz / (ms / 1000); else print "?" }')
    if [ "$SYS" != baseline ] && [ "$R_BUSY_S" != "?" ] && [ "$R_SRV_PCT" != "?" ] && [ $(( R_BUSY_S - R_SRV_PCT )) -gt 15 ]; then
        NOISY[$SYS]="${NOISY[$SYS]:+${NOISY[$SYS]}, }$tag (${R_BUSY_S}% vs ${R_SRV_PCT}%)"
    fi
    if [ "$R_STEAL" != "?" ] && [ "$R_STEAL" -gt "${STEAL_MAX[$SYS]:-0}" ]; then STEAL_MAX[$SYS]=$R_STEAL; fi
    [ "$R_FAILED" -gt 0 ] && R_ERRS=$(fail_summary "$dir/uac.csv" "$dir/uac_errors.log" "$dir/uas_errors.log")
    return 0
}

stop_uas() {            # stop_uas TIMEOUT_PID STAT_CSV: let the UAS finish its calls, then quit it
    # The UAS runs with a large -m so that stray requests from an earlier run
    # (a late CANCEL or retransmission from the server) cannot use up its
    # call budget; SIGUSR1 makes sipp quit gracefully and write final stats.
    local pid=$1 csv=$2 i sp
    for ((i = 0; i < 30; i++)); do          # <= 6 s for calls still open on the UAS
        kill -0 "$pid" 2>/dev/null || break
        [ "$(stat_field "$csv" CurrentCall)" = 0 ] && break
        sleep 0.2
    done
    for sp in $(pgrep -P "$pid" 2>/dev/null); do
        [ "$(cat "/proc/$sp/comm" 2>/dev/null)" = sipp ] && kill -USR1 "$sp" 2>/dev/null
    done
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$pid" 2
}

server_alive() { kill -0 "$SERVER_PID" 2>/dev/null; }

step_row() {            # step_row PHASE RATE CALLS VERDICT
    STEPS_MD+=("| $SYS | $1 | $2 | $3 | $R_FAILED ($R_FAILPCT %) | $R_ACH | $R_SRV_PCT % | $R_BUSY_S % | $R_STEAL % | $R_BUSY_L % | $R_DROPS | $4 |")
}

# ---------------------------------------------------------------- servers
cpu_budget() {          # the cgroup that holds each server to CPU_BUDGET % of a core
    [ -n "$CPU_BUDGET" ] || return 0
    local q=$(( CPU_BUDGET * 1000 ))
    if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then
        CGROUP=/sys/fs/cgroup/cpu/ssbench-$$
        mkdir -p "$CGROUP" && echo 100000 >"$CGROUP/cpu.cfs_period_us" && echo "$q" >"$CGROUP/cpu.cfs_quota_us" && return 0
    elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
        echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
        CGROUP=/sys/fs/cgroup/ssbench-$$
        mkdir -p "$CGROUP" && echo "$q 100000" >"$CGROUP/cpu.max" && return 0
    fi
    die "CPU_BUDGET=$CPU_BUDGET: no writable cgroup cpu controller here"
}
join_budget() { [ -z "$CGROUP" ] || echo "$BASHPID" >"$CGROUP/cgroup.procs"; }

start_server() {        # start_server SYSTEM -> SERVER_PID, SERVER_LOG
    local sys=$1 d="$TMP/$1"
    mkdir -p "$d"
    SERVER_LOG="$d/server-$(date +%H%M%S).log"
    case "$sys" in
    softswitch|softswitch-nocdr|softswitch-radius)
        mkdir -p "$d/data"
        cat >"$d/softswitch.toml" <<EOF
[sip]
listen = "127.0.0.1:$SERVER_PORT"

[[trusted_peer]]
name = "bench-uac"
address = "127.0.0.1"

[[gateway]]
name = "bench-gw"
address = "127.0.0.1:$GW_PORT"
transport = "udp"

[[group]]
name = "bench"
[[group.member]]
gateway = "bench-gw"

[[route]]
name = "bench"
group = "bench"

[[analysis]]
prefix = "9"
action = "route"
route = "bench"
EOF
        # CDRs are on by default (the spool in data/cdr, fdatasync per batch).
        [ "$sys" = softswitch-nocdr ] && printf '\n[billing]\nenabled = false\n' >>"$d/softswitch.toml"
        if [ "$sys" = softswitch-radius ]; then
            start_freeradius "$d/radius" || return 1
            printf '\n[aaa]\naccounting = ["bench"]\n\n[[aaa.radius]]\nname = "bench"\naddress = "127.0.0.1"\nacct_port = %s\nsecret = "bench-radius-secret-0123"\n' \
                "$RADIUS_PORT" >>"$d/softswitch.toml"
        fi
        (join_budget; exec taskset -c "$SERVER_CPU" "$BIN" --config "$d/softswitch.toml" --data-dir "$d/data" \
            --sip-listen "127.0.0.1:$SERVER_PORT" --log-level warn >"$SERVER_LOG" 2>&1) &
        ;;
    kamailio)
        mkdir -p "$d/run"
        (join_budget; exec taskset -c "$SERVER_CPU" kamailio -f "$HERE/kamailio.cfg" -DD -E \
            -x "$KAM_MEM" -m "$KAM_SHM_MB" -M "$KAM_PKG_MB" -Y "$d/run" -P "$d/run/kamailio.pid" \
            -l "udp:127.0.0.1:$SERVER_PORT" -A "GW_URI=\"sip:127.0.0.1:$GW_PORT\"" \
            -A "CHILDREN=$KAM_CHILDREN" >"$SERVER_LOG" 2>&1) &
        ;;
    esac
    SERVER_PID=$!; PIDS+=("$SERVER_PID")
    if ! wait_udp_bound "$SERVER_PORT" "$SERVER_PID" 10; then
        log "$sys did not bind 127.0.0.1:$SERVER_PORT within 10 s; log tail:"
        tail -n 15 "$SERVER_LOG" >&2
        stop_server
        return 1
    fi
    sleep 1
    server_alive || { log "$sys exited right after start"; tail -n 15 "$SERVER_LOG" >&2; stop_server; return 1; }
    SERVER_KIDS=$(tree_pids "$SERVER_PID" | tail -n +2)
    return 0
}

# start_freeradius DIR: a FreeRADIUS on LOAD_CPU answering accounting on
# RADIUS_PORT (a free port) and writing its detail file, as an operator's
# would; stopped with the server.
start_freeradius() {
    local dir=$1
    command -v freeradius >/dev/null 2>&1 || { log "freeradius not installed (bash .ci/deps.sh installs it)"; return 1; }
    RADIUS_PORT=$(free_ports 1)
    mkdir -p "$dir/mods-enabled" "$dir/sites-enabled" "$dir/log" "$dir/run" "$dir/radacct"
    chmod 700 "$dir"
    cat >"$dir/radiusd.conf" <<EOF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $dir/log
raddbdir = $dir
radacctdir = $dir/radacct
name = freeradius
confdir = \${raddbdir}
run_dir = $dir/run
db_dir = $dir
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/radiusd.pid
max_requests = 65536
log {
	destination = stdout
}
security {
	max_attributes = 200
	reject_delay = 0
	status_server = no
}
proxy_requests = no
\$INCLUDE clients.conf
thread pool {
	start_servers = 4
	max_servers = 8
	min_spare_servers = 2
	max_spare_servers = 6
	max_requests_per_server = 0
}
modules {
	\$INCLUDE mods-enabled/
}
\$INCLUDE sites-enabled/
EOF
    printf 'client local {\n\tipaddr = 127.0.0.1\n\tsecret = "bench-radius-secret-0123"\n}\n' >"$dir/clients.conf"
    printf 'detail {\n\tfilename = ${radacctdir}/detail\n\tpermissions = 0600\n\theader = "%%t"\n}\n' >"$dir/mods-enabled/detail"
    cat >"$dir/sites-enabled/default" <<EOF
server default {
listen {
	type = acct
	ipaddr = 127.0.0.1
	port = $RADIUS_PORT
}
preacct {
}
accounting {
	detail
}
}
EOF
    (exec taskset -c "$LOAD_CPU" freeradius -f -l stdout -d "$dir" >"$dir/freeradius.log" 2>&1) &
    RADIUS_PID=$!; PIDS+=("$RADIUS_PID")
    local i
    for i in $(seq 1 100); do
        grep -q "Ready to process requests" "$dir/freeradius.log" 2>/dev/null && return 0
        kill -0 "$RADIUS_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "FreeRADIUS did not start; log tail:"; tail -n 15 "$dir/freeradius.log" >&2
    return 1
}

stop_server() {
    local p
    SERVER_KIDS=$(tree_pids "$SERVER_PID" | tail -n +2)
    stop_pid "$SERVER_PID" 10
    for p in $SERVER_KIDS; do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = kamailio ] && kill -KILL "$p" 2>/dev/null
    done
    SERVER_KIDS=""
    return 0
    if [ -n "${RADIUS_PID:-}" ]; then stop_pid "$RADIUS_PID" 5; RADIUS_PID=""; fi
}

restart_server() {
    stop_server
    start_server "$SYS"
}

# ---------------------------------------------------------------- phases
search_rate() {         # sets RES[$SYS,rate] and RES[$SYS,rate_note]
    local rate=$START_RATE lo=0 hi=0 steps=0 calls=0 verdict t_end mid lim_note="" sipp_lim=0
    local bisect=$BISECT_STEPS
    t_end=$(( SECONDS + SEARCH_BUDGET ))
    log "[$SYS] rate search: start $START_RATE calls/s, $STEP_SECONDS s of calls per step"
    while :; do
        if [ "$steps" -ge "$MAX_SEARCH_STEPS" ] || [ "$SECONDS" -ge "$t_end" ]; then
            note "$SYS: rate search cut short (step/time budget) after $steps steps"
            break
        fi
        if [ "$hi" -eq 0 ]; then
            [ "$rate" -gt "$MAX_RATE" ] && break
        else
            # bisect between lo (clean) and hi (failed), to a multiple of 50 calls/s
            [ "$bisect" -le 0 ] && break
            mid=$(( (lo + hi) / 2 / 50 * 50 ))
            { [ "$mid" -le "$lo" ] || [ $(( hi - lo )) -le $(( lo / 25 > 50 ? lo / 25 : 50 )) ]; } && break
            rate=$mid
            bisect=$(( bisect - 1 ))
        fi
        calls=$(( rate * STEP_SECONDS ))
        steps=$(( steps + 1 ))
        wait_udp_drained "$SERVER_PORT" 10 || true
        run_load "search-$rate" "$rate" "$calls" uac.xml 0 0 || { note "$SYS: load run failed at $rate calls/s"; break; }
        if ! server_alive; then
            verdict="server died"
            step_row search "$rate" "$calls" "$verdict"
            note "$SYS: server process died during the $rate calls/s step (log: tail below)"
            tail -n 20 "$SERVER_LOG" >&2
            hi=$rate
            break
        fi
        if [ "$R_FAILED" -gt 0 ] && [ $(( R_FAILED * 1000 )) -ge "$calls" ]; then
            verdict="fail${R_ERRS:+ ($R_ERRS)}"
            hi=$rate
        elif [ $(( R_ACH * 100 )) -lt $(( rate * 95 )) ] && [ "$R_MAXCUR" -lt $(( R_LIMIT * 98 / 100 )) ]; then
            verdict="clean, but sipp was the limit (achieved $R_ACH calls/s)"
            sipp_lim=1
            [ "$R_ACH" -gt "$lo" ] && lo=$R_ACH
        else
            verdict="clean"
            lo=$rate
        fi
        log "[$SYS]   $rate calls/s x $calls: failed $R_FAILED ($R_FAILPCT %), achieved $R_ACH/s, CPU$SERVER_CPU ${R_BUSY_S}% CPU$LOAD_CPU ${R_BUSY_L}% -> $verdict"
        step_row search "$rate" "$calls" "$verdict"
        [ "$sipp_lim" = 1 ] && break
        if [ "$hi" -eq 0 ]; then rate=$(( rate * 2 )); fi
        if [ "${verdict#fail}" != "$verdict" ]; then
            # an overloaded server keeps timers and half-open transactions for
            # a while (late CANCELs, retransmissions): start the next step fresh
            restart_server || { note "$SYS: did not restart after the $rate calls/s step"; break; }
        else
            sleep "$SETTLE"
        fi
    done
    RES[$SYS,rate]=$lo
    if [ "$sipp_lim" = 1 ]; then
        lim_note="sipp was the limit"
        note "$SYS: sipp was the limit: at target $rate calls/s sipp generated only $R_ACH calls/s (CPU$LOAD_CPU ${R_BUSY_L}% busy) with no failures; the server's real limit is higher"
    elif [ "$hi" -eq 0 ] && [ "$lo" -gt 0 ]; then
        lim_note="no failing step reached"
    fi
    RES[$SYS,rate_note]=$lim_note
    [ "$lo" -eq 0 ] && note "$SYS: no clean step at all (first step: $R_FAILED of $calls calls failed${R_ERRS:+; $R_ERRS})"
    log "[$SYS] highest clean rate: $lo calls/s${lim_note:+ (at least; $lim_note)}"
}

fixed_rate() {          # fixed_rate [RATE [KEY]]: CPU per call + latency at RATE (FIXED_RATE)
    local FIXED_RATE=${1:-$FIXED_RATE} k=${2:-} v
    local calls=$(( FIXED_RATE * FIXED_SECONDS ))
    wait_udp_drained "$SERVER_PORT" 10 || true
    # warm-up (the server may just have been restarted): not measured
    run_load warmup "$FIXED_RATE" $(( FIXED_RATE * 3 )) uac.xml 0 0 || { note "$SYS: warm-up run failed"; return 1; }
    step_row warmup "$FIXED_RATE" $(( FIXED_RATE * 3 )) "$( [ "$R_FAILED" -eq 0 ] && echo clean || echo "fail${R_ERRS:+ ($R_ERRS)}")"
    sleep 2
    wait_udp_drained "$SERVER_PORT" 10 || true
    log "[$SYS] fixed load: $FIXED_RATE calls/s x $calls calls (CPU per call, latency)"
    run_load "fixed$k" "$FIXED_RATE" "$calls" uac.xml 0 1 || { note "$SYS: fixed-rate run failed"; return 1; }
    step_row "fixed$k" "$FIXED_RATE" "$calls" "$( [ $(( R_FAILED * 1000 )) -lt "$calls" ] && echo clean || echo "fail${R_ERRS:+ ($R_ERRS)}")"
    if [ "$R_SUCC" -gt 0 ]; then
        RES[$SYS,cpu_us$k]=$(awk -v t="$R_TICKS" -v hz="$CLK_TCK" -v n="$R_SUCC" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }')
        RES[$SYS,cpu_core$k]=$(awk -v t="$R_TICKS" -v hz="$CLK_TCK" -v r="$FIXED_RATE" -v n="$R_SUCC" 'BEGIN { printf "%.0f", 100 * t / hz / n * r }')
    fi
    [ "$R_FAILED" -gt 0 ] && note "$SYS: $R_FAILED of $calls calls failed in the fixed-rate run${R_ERRS:+ ($R_ERRS)}"
    [ $(( R_ACH * 100 )) -lt $(( FIXED_RATE * 95 )) ] && note "$SYS: fixed-rate run achieved only $R_ACH calls/s"
    if [ -n "$R_CAP" ] && [ -s "$R_CAP" ]; then
        v=$(awk '$1 == "p50_ms" {print $2}' "$R_CAP"); RES[$SYS,p50$k]=$v
        v=$(awk '$1 == "p99_ms" {print $2}' "$R_CAP"); RES[$SYS,p99$k]=$v
        v=$(awk '$1 == "answered" {print $2}' "$R_CAP"); RES[$SYS,lat_n$k]=$v
        v=$(awk '$1 == "drops" {print $2}' "$R_CAP"); [ "${v:-0}" != 0 ] && note "$SYS: latency capture dropped $v packets"
        v=$(awk '$1 == "error" {print $2}' "$R_CAP"); [ "${v:-none}" != none ] && note "$SYS: latency capture: $v"
    fi
    log "[$SYS]   CPU ${RES[$SYS,cpu_us$k]:-?} us/call (${RES[$SYS,cpu_core$k]:-?} % of a core), latency p50 ${RES[$SYS,p50$k]:-?} ms p99 ${RES[$SYS,p99$k]:-?} ms, failed $R_FAILED"
}

hold_memory() {         # memory with HOLD_CALLS concurrent calls on a fresh server
    local hold_ms idle
    hold_ms=$(( (HOLD_CALLS + HOLD_RATE - 1) / HOLD_RATE * 1000 + 10000 ))
    sleep 2
    # shellcheck disable=SC2046
    read -r "RES[$SYS,rss_idle]" "RES[$SYS,pss_idle]" <<<"$(mem_kb $(tree_pids "$SERVER_PID"))"
    log "[$SYS] idle: RSS $(fmt_mb "${RES[$SYS,rss_idle]}") MB, PSS $(fmt_mb "${RES[$SYS,pss_idle]}") MB; holding $HOLD_CALLS calls ($HOLD_RATE calls/s, ${hold_ms} ms each)"
    run_load hold "$HOLD_RATE" "$HOLD_CALLS" uac_hold.xml "$hold_ms" 0 || { note "$SYS: held-call run failed"; return 1; }
    step_row hold "$HOLD_RATE" "$HOLD_CALLS" "$( [ $(( R_FAILED * 1000 )) -lt "$HOLD_CALLS" ] && echo clean || echo "fail${R_ERRS:+ ($R_ERRS)}"); $R_UP up at sample"
    RES[$SYS,rss_held]=$R_RSS
    RES[$SYS,pss_held]=$R_PSS
    RES[$SYS,held_up]=$R_UP
    [ "${R_UP:-0}" -lt "$HOLD_CALLS" ] && note "$SYS: only ${R_UP:-0} of $HOLD_CALLS calls were up when memory was sampled"
    [ "$R_FAILED" -gt 0 ] && note "$SYS: $R_FAILED of $HOLD_CALLS held calls failed${R_ERRS:+ ($R_ERRS)}"
    if [ -n "$R_PSS" ] && [ "${R_UP:-0}" -gt 0 ]; then
        RES[$SYS,pss_per_call]=$(awk -v a="$R_PSS" -v b="${RES[$SYS,pss_idle]}" -v n="$R_UP" 'BEGIN { printf "%.1f", (a - b) / n }')
    fi
}

overload_run() {        # goodput against offered load (OVER_MULTS x the clean rate)
    local clean=${RES[$SYS,rate]:-0} m rate calls opt_pid dir good ok fail secs
    [ "$clean" -gt 0 ] || return 0
    : >"$TMP/overload-$SYS.dat"
    for m in $OVER_MULTS; do
        rate=$(awk -v c="$clean" -v m="$m" 'BEGIN { printf "%d", c * m }')
        secs=$OVER_SECONDS
        [ "$m" = 2 ] && secs=$OVER_SECONDS_2X
        calls=$(( rate * secs ))
        wait_udp_drained "$SERVER_PORT" 10 || true
        dir="$TMP/$SYS/options-$m"; mkdir -p "$dir"
        # keepalives from a second sipp all the while (10/s)
        (cd "$dir" && exec timeout -k 5 $(( secs + 60 )) taskset -c "$LOAD_CPU" sipp -sf "$HERE/options.xml" \
            -i 127.0.0.1 -p "$(free_ports 1)" "127.0.0.1:$SERVER_PORT" -r 10 -m $(( secs * 10 + 50 )) \
            -timeout $(( secs + 40 )) -nostdin -trace_stat -fd 1 -stf opt.csv >opt.out 2>&1) &
        opt_pid=$!; PIDS+=("$opt_pid")
        log "[$SYS] overload: $m x $clean = $rate calls/s offered for $secs s"
        run_load "over-$m" "$rate" "$calls" uac_overload.xml 0 0 || { note "$SYS: overload run at $rate calls/s failed"; stop_pid "$opt_pid"; break; }
        wait "$opt_pid" 2>/dev/null; forget_pid "$opt_pid"
        ok=$(stat_field "$dir/opt.csv" "SuccessfulCall(C)"); fail=$(stat_field "$dir/opt.csv" "FailedCall(C)")
        good=$(awk -v n="$R_SUCC_UAS" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
        printf '%s %s %s %s %s %s %s\n' "$m" "$rate" "$good" "$R_SUCC_UAS" "${R_FAILED_UAC:-?}" "${ok:-0}" "${fail:-?}" >>"$TMP/overload-$SYS.dat"
        OVER_MD+=("| $SYS | $m | $rate | $good | $(awk -v g="$good" -v c="$clean" 'BEGIN { printf "%.0f", 100 * g / c }') % | ${R_FAILED_UAC:-?} | ${ok:-0} / $(( ${ok:-0} + ${fail:-0} )) | $R_SRV_PCT % | $R_DROPS |")
        log "[$SYS]   goodput $good calls/s ($R_SUCC_UAS completed), admitted calls failed: ${R_FAILED_UAC:-?}, OPTIONS 200: ${ok:-0}, failed ${fail:-?}"
        server_alive || { note "$SYS: server died in the overload run at $rate calls/s"; return 1; }
        sleep "$SETTLE"
    done
}

recovery_run() {        # back to normal after the load drops (R22): 2x, then 0.5x
    local clean=${RES[$SYS,rate]:-0} secs=$RECOVERY_SECONDS dir lo hi uas_pid a_pid b_pid bport
    local tb0 tdrop last fails ok_b fail_a drop_s rec
    [ "$clean" -gt 0 ] || return 0
    lo=$(( clean / 2 )); hi=$(( clean * 3 / 2 ))
    dir="$TMP/$SYS/recovery"; mkdir -p "$dir"
    wait_udp_drained "$SERVER_PORT" 10 || true
    log "[$SYS] recovery: $hi + $lo calls/s for $secs s, then $lo calls/s for $secs s"
    (cd "$dir" && exec timeout -k 5 $(( 3 * secs + 60 )) taskset -c "$LOAD_CPU" sipp -sf "$HERE/uas.xml" \
        -i 127.0.0.1 -p "$GW_PORT" -m $(( (hi + lo) * secs * 2 + 1000 )) -recv_timeout 15000 \
        -timeout $(( 3 * secs + 45 )) -nostdin -buff_size "$SIPP_BUF" -trace_stat -fd 1 -stf uas.csv >uas.out 2>&1) &
    uas_pid=$!; PIDS+=("$uas_pid")
    wait_udp_bound "$GW_PORT" "$uas_pid" 10 || { note "$SYS: recovery UAS did not start"; stop_pid "$uas_pid"; return 0; }
    bport=$(free_ports 1)
    tb0=$(now_ms)
    (cd "$dir" && exec timeout -k 5 $(( 3 * secs + 50 )) taskset -c "$LOAD_CPU" sipp -sf "$HERE/uac.xml" \
        -i 127.0.0.1 -p "$bport" "127.0.0.1:$SERVER_PORT" -r "$lo" -m $(( lo * secs * 2 )) -l 3000 \
        -recv_timeout 10000 -timeout $(( 2 * secs + 35 )) -nostdin -buff_size "$SIPP_BUF" \
        -trace_stat -fd 1 -stf b.csv >b.out 2>&1) &
    b_pid=$!; PIDS+=("$b_pid")
    (cd "$dir" && exec timeout -k 5 $(( secs + 50 )) taskset -c "$LOAD_CPU" sipp -sf "$HERE/uac_overload.xml" \
        -i 127.0.0.1 -p "$UAC_PORT" "127.0.0.1:$SERVER_PORT" -r "$hi" -m $(( hi * secs )) -l $(( hi * 3 )) \
        -recv_timeout 10000 -timeout $(( secs + 35 )) -nostdin -buff_size "$SIPP_BUF" \
        -trace_stat -fd 1 -stf a.csv >a.out 2>&1) &
    a_pid=$!; PIDS+=("$a_pid")
    # The load drops when the surge UAC stops making calls: its last
    # second of creating them, as its stats show.
    wait "$a_pid" 2>/dev/null; forget_pid "$a_pid"
    wait "$b_pid" 2>/dev/null; forget_pid "$b_pid"
    stop_uas "$uas_pid" "$dir/uas.csv"
    # seconds from the 0.5x UAC's start: the surge's end (its last row
    # still creating calls) and the 0.5x UAC's last second with a failure
    drop_s=$(awk -F';' -v n=$(( hi * secs )) 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "OutgoingCall(C)") c = i; next }
        c && $c + 0 < n { r = NR - 1 } END { print r + 1 }' "$dir/a.csv")
    last=$(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "FailedCall(P)") c = i; next }
        c && $c + 0 > 0 { r = NR - 1 } END { print r + 0 }' "$dir/b.csv")
    fails=$(stat_field "$dir/b.csv" "FailedCall(C)"); ok_b=$(stat_field "$dir/b.csv" "SuccessfulCall(C)")
    fail_a=$(stat_field "$dir/a.csv" "FailedCall(C)")
    rec=$(( last > drop_s ? last - drop_s : 0 ))
    RES[$SYS,recovery]=$rec
    RECOVERY_MD+=("| $SYS | $hi + $lo, then $lo | $drop_s | $last | $rec s | $ok_b / $(( ok_b + fails )) | ${fail_a:-?} |")
    log "[$SYS]   load dropped at +${drop_s} s; last 0.5x call refused or failed at +${last} s: back to normal ${rec} s after the drop; 0.5x calls completed $ok_b of $(( ok_b + fails )), surge calls admitted and failed ${fail_a:-?}"
    server_alive || { note "$SYS: server died in the recovery run"; return 1; }
}

plot_overload() {       # gnuplot of goodput against offered load, both systems
    [ -n "$PLOT" ] || return 0
    if ! command -v gnuplot >/dev/null 2>&1; then
        log "installing gnuplot-nox (the overload plot) ..."
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >"$TMP/apt.log" 2>&1 || { note "gnuplot not installed: no plot"; return 0; }
    fi
    local cmd="" s
    for s in "${SYS_LIST[@]}"; do
        [ -s "$TMP/overload-$s.dat" ] || continue
        cmd+="${cmd:+, }'$TMP/overload-$s.dat' using 2:3 with linespoints lw 2 title '$s'"
    done
    [ -n "$cmd" ] || return 0
    gnuplot <<EOF 2>"$TMP/gnuplot.log" || { note "gnuplot failed: $(head -n 1 "$TMP/gnuplot.log")"; return 0; }
set terminal pngcairo size 800,500 noenhanced
set output '$PLOT'
set title 'Goodput against offered load ($START_TS, ${CPU_BUDGET:+$CPU_BUDGET % of a core each, }server on one CPU)'
set xlabel 'offered calls/s'
set ylabel 'completed calls/s'
set key left top
set grid
plot x title 'offered' with lines dt 2 lc rgb 'gray', $cmd
EOF
    log "plot written to $PLOT"
}

run_system() {
    SYS=$1
    read -r SERVER_PORT GW_PORT UAC_PORT <<<"$(free_ports 3)"
    log "=== $SYS: server 127.0.0.1:$SERVER_PORT (CPU $SERVER_CPU), gateway UAS :$GW_PORT, UAC :$UAC_PORT (CPU $LOAD_CPU)"
    RES[$SYS,status]="ok"
    start_server "$SYS" || { RES[$SYS,status]="did not start"; note "$SYS: did not start (see log above)"; return 1; }
    search_rate
    if ! server_alive; then RES[$SYS,status]="died during rate search"; stop_server; return 1; fi
    if [ "${RES[$SYS,rate]}" -eq 0 ]; then
        RES[$SYS,status]="calls fail"
        stop_server
        return 1
    fi
    sleep "$SETTLE"
    fixed_rate
    sleep "$SETTLE"
    fixed_rate "$FIXED_RATE2" 2
    if [ "$SYS" = softswitch-nocdr ] || [ "$SYS" = softswitch-radius ]; then   # the CDR or accounting cost only
        stop_server
        [ "${RES[$SYS,status]}" = ok ]
        return
    fi
    sleep "$SETTLE"
    overload_run
    sleep "$SETTLE"
    recovery_run
    # fresh process for the memory test, so peaks from the rate search don't count
    restart_server || { RES[$SYS,status]="did not restart"; return 1; }
    hold_memory
    server_alive || RES[$SYS,status]="died during held calls"
    stop_server
    [ "${RES[$SYS,status]}" = ok ]
}

baseline() {            # sipp UAC -> sipp UAS directly: the latency floor sipp itself adds
    SYS=baseline
    read -r GW_PORT UAC_PORT <<<"$(free_ports 2)"
    SERVER_PORT=$GW_PORT
    SERVER_PID=$$
    log "=== baseline: sipp UAC -> sipp UAS directly, $FIXED_RATE calls/s"
    if run_load fixed "$FIXED_RATE" $(( FIXED_RATE * FIXED_SECONDS )) uac.xml 0 1 && [ -n "$R_CAP" ] && [ -s "$R_CAP" ]; then
        RES[baseline,p50]=$(awk '$1 == "p50_ms" {print $2}' "$R_CAP")
        RES[baseline,p99]=$(awk '$1 == "p99_ms" {print $2}' "$R_CAP")
        RES[baseline,failed]=$R_FAILED
    fi
}

# ---------------------------------------------------------------- main
START_TS=$(date -u '+%Y-%m-%d %H:%M UTC')
IFS=, read -r -a SYS_LIST <<<"$SYSTEMS"
for s in "${SYS_LIST[@]}"; do
    case "$s" in softswitch|softswitch-nocdr|softswitch-radius|kamailio) ;; *) die "unknown system '$s' (softswitch, softswitch-nocdr, softswitch-radius, kamailio)" ;; esac
done

BUILD_NOTE=""
case ",$SYSTEMS," in *,softswitch,*|*,softswitch-nocdr,*|*,softswitch-radius,*)
    if [ -z "$BIN" ]; then
        command -v go >/dev/null 2>&1 || die "go not found (or pass BIN=/path/to/softswitch)"
        log "building ./cmd/softswitch ..."
        mkdir -p "$TMP/bin"
        if (cd "$REPO" && timeout 900 go build -o "$TMP/bin/softswitch" ./cmd/softswitch) >"$TMP/build.log" 2>&1; then
            BIN="$TMP/bin/softswitch"
        else
            tail -n 20 "$TMP/build.log" >&2
            BUILD_NOTE="softswitch: go build ./cmd/softswitch failed: $(grep -v '^#' "$TMP/build.log" | head -n 1)"
            BIN=""
        fi
    fi
    [ -n "$BIN" ] && [ ! -x "$BIN" ] && die "softswitch binary $BIN is not executable"
    ;;
esac

[ "$RMEM_MAX" -lt "$SIPP_BUF" ] && NOTES+=("net.core.rmem_max is $RMEM_MAX: sipp and Kamailio socket buffers are capped there; drops in bursts are likely above ~1000 calls/s")

# is the machine quiet?  (other jobs on these CPUs skew every figure)
s0=$(cpu_snap); sleep 2; s1=$(cpu_snap)
b0=$(busy_pct "$s0" "$s1" "cpu$SERVER_CPU"); b1=$(busy_pct "$s0" "$s1" "cpu$LOAD_CPU")
log "before the run: CPU$SERVER_CPU ${b0}% busy, CPU$LOAD_CPU ${b1}% busy"
if [ "$b0" != "?" ] && [ "$b1" != "?" ] && { [ "$b0" -gt 10 ] || [ "$b1" -gt 10 ]; }; then
    note "the machine was not idle before the run (CPU$SERVER_CPU ${b0}%, CPU$LOAD_CPU ${b1}% busy): other processes skew the figures"
fi

cpu_budget
if [ "$BASELINE" = 1 ] && [ "$CAPTURE_OK" = 1 ]; then baseline; sleep 1; fi

machine_notes() {
    local s
    for s in baseline "${SYS_LIST[@]}"; do
        [ -n "${NOISY[$s]:-}" ] && note "$s: the server CPU was busier than the server process (other load on CPU$SERVER_CPU) in: ${NOISY[$s]}"
        [ "${STEAL_MAX[$s]:-0}" -gt 5 ] && note "$s: the hypervisor stole up to ${STEAL_MAX[$s]}% of CPU$SERVER_CPU in a run"
    done
    return 0
}

OVERALL=0
for s in "${SYS_LIST[@]}"; do
    if [ "$s" != kamailio ] && [ -z "$BIN" ]; then
        RES[$s,status]="not built"
        note "$BUILD_NOTE"
        OVERALL=1
        continue
    fi
    run_system "$s" || OVERALL=1
    sleep 2
done

machine_notes
plot_overload

# ---------------------------------------------------------------- report
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
kam_ver=$(kamailio -v 2>/dev/null | awk '/^version:/ {print $3; exit}')
sipp_ver=$(sipp -v 2>&1 | awk '/SIPp v/ {print $2; exit}' | sed 's/[.,]*$//')
go_ver=$(go version 2>/dev/null | awk '{print $3}')
git_rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "no commit")
[ -n "$(git -C "$REPO" status --porcelain 2>/dev/null | head -n 1)" ] && git_rev="$git_rev (+ uncommitted changes)"

val() { local v=${RES[$1,$2]:-}; [ -n "$v" ] && echo "$v" || echo "n/a"; }
mbval() { local v=${RES[$1,$2]:-}; [ -n "$v" ] && fmt_mb "$v" || echo "n/a"; }
rate_cell() { local v=${RES[$1,rate]:-} n=${RES[$1,rate_note]:-}
    if [ -z "$v" ]; then echo "n/a (${RES[$1,status]:-not run})"
    elif [ "$v" = 0 ]; then echo "0 (${RES[$1,status]:-calls fail})"
    else echo "${n:+>= }$v${n:+ ($n)}"; fi; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }

SS=softswitch KA=kamailio
REPORT=$(
    echo "## softswitch vs Kamailio - $START_TS"
    echo
    echo "Machine: $NCPU CPUs, $cpu_model, Linux $(uname -r); Kamailio ${kam_ver:-?}; SIPp ${sipp_ver:-?}; ${go_ver:-go ?}; softswitch ${git_rev}."
    echo "Server pinned to CPU $SERVER_CPU${CPU_BUDGET:+ with a budget of $CPU_BUDGET % of it (cgroup cpu quota, both servers)}, sipp (UAC, UAS gateway) and the capture to CPU $LOAD_CPU; UDP on 127.0.0.1."
    echo "Kamailio: kamailio.cfg (tm + rr + dialog + acc writing a line per INVITE and BYE to its log file (stderr with -E; not fsynced), no database), $KAM_CHILDREN UDP workers, -x $KAM_MEM, -m $KAM_SHM_MB MB shm, -M $KAM_PKG_MB MB pkg."
    echo
    row "metric" "softswitch" "Kamailio" "softswitch / Kamailio"
    row "---" "---:" "---:" "---:"
    row "max call rate, < 0.1 % failed (calls/s)" "$(rate_cell $SS)" "$(rate_cell $KA)" "$(ratio "${RES[$SS,rate]:-}" "${RES[$KA,rate]:-}")"
    row "server CPU per call at $FIXED_RATE calls/s (us)" "$(val $SS cpu_us)" "$(val $KA cpu_us)" "$(ratio "${RES[$SS,cpu_us]:-}" "${RES[$KA,cpu_us]:-}")"
    row "server CPU at $FIXED_RATE calls/s (% of one core)" "$(val $SS cpu_core)" "$(val $KA cpu_core)" "$(ratio "${RES[$SS,cpu_core]:-}" "${RES[$KA,cpu_core]:-}")"
    row "INVITE -> 200 p50 at $FIXED_RATE calls/s (ms)" "$(val $SS p50)" "$(val $KA p50)" "$(ratio "${RES[$SS,p50]:-}" "${RES[$KA,p50]:-}")"
    row "INVITE -> 200 p99 at $FIXED_RATE calls/s (ms)" "$(val $SS p99)" "$(val $KA p99)" "$(ratio "${RES[$SS,p99]:-}" "${RES[$KA,p99]:-}")"
    row "server CPU per call at $FIXED_RATE2 calls/s (us)" "$(val $SS cpu_us2)" "$(val $KA cpu_us2)" "$(ratio "${RES[$SS,cpu_us2]:-}" "${RES[$KA,cpu_us2]:-}")"
    row "INVITE -> 200 p50 at $FIXED_RATE2 calls/s (ms)" "$(val $SS p502)" "$(val $KA p502)" "$(ratio "${RES[$SS,p502]:-}" "${RES[$KA,p502]:-}")"
    row "INVITE -> 200 p99 at $FIXED_RATE2 calls/s (ms)" "$(val $SS p992)" "$(val $KA p992)" "$(ratio "${RES[$SS,p992]:-}" "${RES[$KA,p992]:-}")"
    row "RSS, idle (MB)" "$(mbval $SS rss_idle)" "$(mbval $KA rss_idle)" "$(ratio "${RES[$SS,rss_idle]:-}" "${RES[$KA,rss_idle]:-}")"
    row "RSS, $HOLD_CALLS held calls (MB)" "$(mbval $SS rss_held)" "$(mbval $KA rss_held)" "$(ratio "${RES[$SS,rss_held]:-}" "${RES[$KA,rss_held]:-}")"
    row "PSS, idle (MB)" "$(mbval $SS pss_idle)" "$(mbval $KA pss_idle)" "$(ratio "${RES[$SS,pss_idle]:-}" "${RES[$KA,pss_idle]:-}")"
    row "PSS, $HOLD_CALLS held calls (MB)" "$(mbval $SS pss_held)" "$(mbval $KA pss_held)" "$(ratio "${RES[$SS,pss_held]:-}" "${RES[$KA,pss_held]:-}")"
    row "PSS growth per held call (KB)" "$(val $SS pss_per_call)" "$(val $KA pss_per_call)" "$(ratio "${RES[$SS,pss_per_call]:-}" "${RES[$KA,pss_per_call]:-}")"
    echo
    if [[ ",$SYSTEMS," == *,softswitch-nocdr,* ]]; then
        NC=softswitch-nocdr
        echo "CDR cost (the softswitch with CDRs on, the default, against the same binary with \`[billing] enabled = false\`; Kamailio's acc writes its lines to its log file in its run):"
        echo
        row "metric" "CDRs on" "CDRs off" "on / off"
        row "---" "---:" "---:" "---:"
        row "max call rate, < 0.1 % failed (calls/s)" "$(rate_cell $SS)" "$(rate_cell $NC)" "$(ratio "${RES[$SS,rate]:-}" "${RES[$NC,rate]:-}")"
        row "server CPU per call at $FIXED_RATE calls/s (us)" "$(val $SS cpu_us)" "$(val $NC cpu_us)" "$(ratio "${RES[$SS,cpu_us]:-}" "${RES[$NC,cpu_us]:-}")"
        row "server CPU per call at $FIXED_RATE2 calls/s (us)" "$(val $SS cpu_us2)" "$(val $NC cpu_us2)" "$(ratio "${RES[$SS,cpu_us2]:-}" "${RES[$NC,cpu_us2]:-}")"
        row "INVITE -> 200 p99 at $FIXED_RATE calls/s (ms)" "$(val $SS p99)" "$(val $NC p99)" "$(ratio "${RES[$SS,p99]:-}" "${RES[$NC,p99]:-}")"
        row "INVITE -> 200 p99 at $FIXED_RATE2 calls/s (ms)" "$(val $SS p992)" "$(val $NC p992)" "$(ratio "${RES[$SS,p992]:-}" "${RES[$NC,p992]:-}")"
        echo
    fi
    if [[ ",$SYSTEMS," == *,softswitch-radius,* ]]; then
        RA=softswitch-radius
        echo "RADIUS accounting cost (the softswitch with CDRs on and RADIUS accounting, a Start and a Stop per call, to a FreeRADIUS on CPU $LOAD_CPU writing its detail file, against the softswitch with CDRs on and no accounting):"
        echo
        row "metric" "accounting on" "accounting off" "on / off"
        row "---" "---:" "---:" "---:"
        row "max call rate, < 0.1 % failed (calls/s)" "$(rate_cell $RA)" "$(rate_cell $SS)" "$(ratio "${RES[$RA,rate]:-}" "${RES[$SS,rate]:-}")"
        row "server CPU per call at $FIXED_RATE calls/s (us)" "$(val $RA cpu_us)" "$(val $SS cpu_us)" "$(ratio "${RES[$RA,cpu_us]:-}" "${RES[$SS,cpu_us]:-}")"
        row "server CPU per call at $FIXED_RATE2 calls/s (us)" "$(val $RA cpu_us2)" "$(val $SS cpu_us2)" "$(ratio "${RES[$RA,cpu_us2]:-}" "${RES[$SS,cpu_us2]:-}")"
        row "INVITE -> 200 p99 at $FIXED_RATE2 calls/s (ms)" "$(val $RA p992)" "$(val $SS p992)" "$(ratio "${RES[$RA,p992]:-}" "${RES[$SS,p992]:-}")"
        echo
    fi
    echo "Notes:"
    echo
    echo "- Calls: INVITE, 100/180/200, ACK, BYE, 200 with SDP but no media (uac.xml, uas.xml); the gateway is a sipp UAS behind the server. A call counts as failed unless both the UAC and the UAS scenario completed it. Rate steps run $STEP_SECONDS s of calls each (doubling from $START_RATE calls/s, then bisecting)."
    echo "- CPU per call: utime+stime of the server's process tree (Kamailio: main process and all children) over the fixed-rate run, divided by completed calls."
    echo "- Latency: kernel timestamps of the UAC's first INVITE and the first 200 OK to it, captured on the wire (sipcap.py); sipp's own RTD clock has 4 ms steps.${RES[baseline,p50]:+ sipp UAC -> sipp UAS directly, with no server, measures p50 ${RES[baseline,p50]} ms / p99 ${RES[baseline,p99]} ms at the same rate: that much of each figure is sipp itself.}"
    echo "- Memory: sampled on a freshly started server once all $HOLD_CALLS calls were up (on both legs). PSS sums /proc/PID/smaps_rollup over the process tree. Kamailio's RSS sum counts its shared memory pool (-m $KAM_SHM_MB MB, touched pages only) once per process that touched it, so its PSS is the fair figure."
    echo "- Kamailio runs with -x $KAM_MEM: the Debian build's default allocator (qm, built with memory debugging) costs about 3x the CPU per call here."
    for n in "${NOTES[@]}"; do echo "- $n"; done
    echo
    if [ "${#OVER_MD[@]}" -gt 0 ]; then
        echo "Overload run (${OVER_SECONDS} s per point, ${OVER_SECONDS_2X} s at 2x; goodput: calls the gateway completed per second; a 503 refusal is ACKed and is no failure; admitted calls failed: UAC calls that neither completed nor were refused):"
        echo
        echo "| system | x clean rate | offered calls/s | goodput calls/s | goodput / clean rate | admitted calls failed | OPTIONS 200 / sent | server process CPU | server UDP drops |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for r in "${OVER_MD[@]}"; do echo "$r"; done
        echo
    fi
    if [ "${#RECOVERY_MD[@]}" -gt 0 ]; then
        echo "Recovery run (twice the clean rate for ${RECOVERY_SECONDS} s, a UAC at 1.5x and one at 0.5x, then the 0.5x UAC alone for ${RECOVERY_SECONDS} s more; the 0.5x UAC runs uac.xml, where a 503 is a failure; seconds from the start of the 0.5x UAC, in its 1-s stats rows):"
        echo
        echo "| system | calls/s | load dropped at (s) | last 0.5x call refused or failed at (s) | back to normal after the drop | 0.5x calls completed | surge calls admitted and failed |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
        for r in "${RECOVERY_MD[@]}"; do echo "$r"; done
        echo
    fi
    echo "Steps:"
    echo
    echo "| system | phase | target calls/s | calls | failed | achieved calls/s | server process CPU | CPU$SERVER_CPU busy | CPU$SERVER_CPU steal | CPU$LOAD_CPU (sipp) busy | server UDP drops | result |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    for r in "${STEPS_MD[@]}"; do echo "$r"; done
)

echo
echo "$REPORT"
if [ -n "$OUT" ]; then
    printf '%s\n' "$REPORT" >"$OUT" && log "report written to $OUT"
fi
exit "$OVERALL"
