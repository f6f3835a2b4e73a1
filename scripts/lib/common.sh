# shellcheck shell=bash
# Small helpers shared by scripts/services and scripts/lib/*.sh (sourced, not executed).

log() { printf '[services] %s\n' "$*" >&2; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[services] ERROR: %s\n' "$*" >&2
    exit 1
}

# now_ms: milliseconds since the epoch (bash 5 EPOCHREALTIME, no subprocess).
now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    printf '%s' "${t:0:-3}"
}

# show_log FILE [LINES]: print the tail of a log file to stderr, framed.
show_log() {
    local file=$1 lines=${2:-30}
    if [[ -s $file ]]; then
        printf '[services] ----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" -- "$file" >&2 || true
        printf '[services] ----- end of %s -----\n' "$file" >&2
    else
        printf '[services] (log %s is empty or missing)\n' "$file" >&2
    fi
}

# wait_until SECONDS WHAT CHECK [ALIVE]
# Polls CHECK (a command/function, run with output discarded) until it succeeds or
# SECONDS have passed. If ALIVE is given it is checked on every round too: when it
# fails (e.g. the process died) waiting stops early. Returns 0 on success, 1 otherwise.
wait_until() {
    local seconds=$1 what=$2 check=$3 alive=${4:-}
    local start deadline
    start=$(now_ms)
    deadline=$((start + seconds * 1000))
    while :; do
        if "$check" >/dev/null 2>&1; then
            log "$what: ready after $(($(now_ms) - start)) ms"
            return 0
        fi
        if [[ -n $alive ]] && ! "$alive" >/dev/null 2>&1; then
            printf '[services] ERROR: %s: the process exited while waiting\n' "$what" >&2
            return 1
        fi
        if (($(now_ms) >= deadline)); then
            printf '[services] ERROR: %s: not ready within %s s\n' "$what" "$seconds" >&2
            return 1
        fi
        sleep 0.25
    done
}

# tcp_open HOST PORT: true when something accepts TCP connections there.
tcp_open() {
    local host=$1 port=$2
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# pid_matches PID PATTERN...: true when PID is alive and its command line
# (arguments joined by spaces) contains every PATTERN (fixed strings).
pid_matches() {
    local pid=$1
    shift
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ -n $cmdline ]] || return 1 # zombie / kernel thread
    local pattern
    for pattern in "$@"; do
        [[ $cmdline == *"$pattern"* ]] || return 1
    done
}

# read_pid FILE: print the pid recorded in FILE (empty if none).
read_pid() {
    local file=$1 pid=''
    if [[ -r $file ]]; then
        read -r pid <"$file" || true
    fi
    printf '%s' "$pid"
}

# recorded_pid_alive FILE PATTERN...: print the recorded pid and succeed when it is
# still the same program (see pid_matches).
recorded_pid_alive() {
    local file=$1
    shift
    local pid
    pid=$(read_pid "$file")
    pid_matches "$pid" "$@" || return 1
    printf '%s' "$pid"
}

# start_background PIDFILE LOGFILE CMD...: start CMD detached (own session, stdin
# from /dev/null, stdout+stderr appended to LOGFILE) and record its pid in PIDFILE.
# The pid is written by the process itself right before exec, so it is the pid of
# CMD whatever setsid does. fd 9 (the services lock) is not passed on.
start_background() {
    local pidfile=$1 logfile=$2
    shift 2
    rm -f -- "$pidfile"
    printf '\n===== %s starting: %s =====\n' "$(date -Is)" "$*" >>"$logfile"
    # shellcheck disable=SC2016 # expanded by the inner bash
    nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" "$@" \
        </dev/null >>"$logfile" 2>&1 9>&- &
    # Wait (briefly, with a deadline) for the pid file to appear.
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $pidfile ]] && return 0
        sleep 0.05
    done
    die "could not start: $* (no pid file $pidfile)"
}

# pid_is_zombie PID: the state field of /proc/PID/stat (after the ")" of the name) is Z.
pid_is_zombie() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} == Z ]]
}

# stop_pid NAME PID [SECONDS]: SIGTERM, wait up to SECONDS (default 30), then SIGKILL.
# The caller has already checked that PID is the expected program.
stop_pid() {
    local name=$1 pid=$2 seconds=${3:-30}
    log "$name: stopping pid $pid (SIGTERM)"
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_pid_gone "$pid" "$seconds"; then
        warn "$name: pid $pid still alive after ${seconds} s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_pid_gone "$pid" 10 || die "$name: pid $pid survived SIGKILL"
    fi
    log "$name: stopped"
}

# wait_pid_gone PID SECONDS: poll until PID is gone (or a zombie); 1 on timeout.
wait_pid_gone() {
    local pid=$1 deadline=$(($(now_ms) + $2 * 1000))
    while kill -0 "$pid" 2>/dev/null && ! pid_is_zombie "$pid"; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.2
    done
}
