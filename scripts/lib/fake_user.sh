# shellcheck shell=bash
# The fake egov-user service (this repo's dev binary `fake-egov-user`) for scripts/services.
# Needs: common.sh, and REPO_DIR, STATE_DIR, LOCAL_FAKE_USER_PORT from scripts/services.

FAKE_DIR=$STATE_DIR/fake-egov-user
FAKE_PID=$FAKE_DIR/fake-egov-user.pid
FAKE_LOG=$FAKE_DIR/fake-egov-user.log
FAKE_BUILD_LOG=$FAKE_DIR/cargo-build.log
FAKE_USERS=$REPO_DIR/dev/fake-egov-users.json
FAKE_LOCALIZATION=$REPO_DIR/dev/fake-localization.json
FAKE_URL=http://127.0.0.1:$LOCAL_FAKE_USER_PORT

# Respect CARGO_TARGET_DIR (a relative one is relative to the repo root, where cargo runs).
fake_bin() {
    local target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target=$REPO_DIR/$target
    printf '%s/debug/fake-egov-user' "$target"
}

fake_address() { printf '%s' "$FAKE_URL"; }

# (cmdline arguments are joined with spaces, each followed by one: "--port N " is exact)
fake_pid() { recorded_pid_alive "$FAKE_PID" fake-egov-user "--port $LOCAL_FAKE_USER_PORT "; }
fake_alive() { fake_pid >/dev/null; }

# "Up" means a user search answers.
fake_search_ok() {
    curl -sf --max-time 3 -o /dev/null -X POST -H 'content-type: application/json' \
        -d '{"tenantId":"pb","userType":"CITIZEN","userName":"0"}' "$FAKE_URL/user/_search"
}

fake_fail() {
    show_log "$FAKE_LOG"
    die "fake-egov-user: $*"
}

fake_build() {
    command -v cargo >/dev/null || die "fake-egov-user: cargo is not installed"
    log "fake-egov-user: cargo build --quiet -p fake-egov-user (waits if another build holds the lock)"
    local start
    start=$(now_ms)
    if ! (cd "$REPO_DIR" && cargo build --quiet -p fake-egov-user) >"$FAKE_BUILD_LOG" 2>&1; then
        show_log "$FAKE_BUILD_LOG" 40
        die "fake-egov-user: cargo build failed (full log: $FAKE_BUILD_LOG)"
    fi
    log "fake-egov-user: built in $(($(now_ms) - start)) ms"
}

fake_up() {
    mkdir -p -- "$FAKE_DIR"
    local pid
    if pid=$(fake_pid); then
        log "fake-egov-user: already running (pid $pid), checking it"
        wait_until 30 "fake-egov-user: POST $FAKE_URL/user/_search" fake_search_ok fake_alive ||
            fake_fail "running (pid $pid) but $FAKE_URL/user/_search does not answer"
        log "fake-egov-user: up at $FAKE_URL (pid $pid)"
        return 0
    fi
    if tcp_open 127.0.0.1 "$LOCAL_FAKE_USER_PORT"; then
        die "fake-egov-user: 127.0.0.1:$LOCAL_FAKE_USER_PORT is already in use by a process this script did not start; stop it or set LOCAL_FAKE_USER_PORT"
    fi
    [[ -f $REPO_DIR/tools/fake-egov-user/src/main.rs ]] ||
        die "fake-egov-user: $REPO_DIR/tools/fake-egov-user/src/main.rs does not exist (yet)"
    [[ -f $FAKE_USERS ]] || die "fake-egov-user: users file $FAKE_USERS does not exist (yet)"
    fake_build
    local bin
    bin=$(fake_bin)
    [[ -x $bin ]] || die "fake-egov-user: cargo build succeeded but $bin is missing"
    log "fake-egov-user: starting on $FAKE_URL (log: $FAKE_LOG)"
    start_background "$FAKE_PID" "$FAKE_LOG" \
        "$bin" --port "$LOCAL_FAKE_USER_PORT" --users "$FAKE_USERS" --localization "$FAKE_LOCALIZATION"
    pid=$(read_pid "$FAKE_PID")
    wait_until 30 "fake-egov-user: POST $FAKE_URL/user/_search" fake_search_ok fake_alive ||
        fake_fail "started (pid $pid) but $FAKE_URL/user/_search does not answer"
    log "fake-egov-user: up at $FAKE_URL (pid $pid)"
}

fake_down() {
    local pid
    if pid=$(fake_pid); then
        stop_pid fake-egov-user "$pid" 15
    else
        log "fake-egov-user: not running (nothing started by this script)"
    fi
    rm -f -- "$FAKE_PID"
}

fake_status() {
    local pid
    if pid=$(fake_pid) && fake_search_ok; then
        status_line fake-egov-user "$FAKE_URL" running "pid $pid, users $FAKE_USERS, log $FAKE_LOG"
    elif [[ -n ${pid:-} ]]; then
        status_line fake-egov-user "$FAKE_URL" stopped "pid $pid alive but /user/_search does not answer"
        return 1
    else
        status_line fake-egov-user "$FAKE_URL" stopped ""
        return 1
    fi
}

fake_logs() { printf '%s\n' "$FAKE_LOG" "$FAKE_BUILD_LOG"; }
