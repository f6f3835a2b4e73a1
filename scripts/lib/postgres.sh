# shellcheck shell=bash
# PostgreSQL 15 (Debian's binaries, own cluster) for scripts/services.
# Needs: common.sh, and STATE_DIR, LOCAL_PG_* from scripts/services.

PG_VERSION=15
PG_BIN=/usr/lib/postgresql/$PG_VERSION/bin
PG_DIR=$STATE_DIR/postgres
PG_DATA=$PG_DIR/data
PG_RUN=$PG_DIR/run # unix socket directory
PG_LOG=$PG_DIR/postgres.log

pg_address() { printf '127.0.0.1:%s' "$LOCAL_PG_PORT"; }
pg_url() { printf 'postgres://%s:%s@127.0.0.1:%s/%s' "$LOCAL_PG_USER" "$LOCAL_PG_PASSWORD" "$LOCAL_PG_PORT" "$LOCAL_PG_DB"; }

# initdb refuses to run as root: as root, the server runs as the postgres user.
pg_as_owner() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_ensure_installed() {
    [[ -x $PG_BIN/pg_ctl ]] && return 0
    log "postgres: $PG_BIN is missing, installing postgresql-$PG_VERSION with apt-get"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "postgres: not root and no sudo; install postgresql-$PG_VERSION yourself"
        sudo=(sudo)
    fi
    local apt_log=$STATE_DIR/apt-postgres.log
    if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "postgresql-$PG_VERSION" >"$apt_log" 2>&1; then
        log "postgres: apt-get install failed, running apt-get update and retrying"
        if ! { DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "postgresql-$PG_VERSION"; } >>"$apt_log" 2>&1; then
            show_log "$apt_log"
            die "postgres: could not install postgresql-$PG_VERSION"
        fi
    fi
    [[ -x $PG_BIN/pg_ctl ]] || die "postgres: postgresql-$PG_VERSION installed but $PG_BIN/pg_ctl is missing"
}

# Create the folders; as root hand them to the postgres user and make sure that
# user can reach them (every parent must be traversable).
pg_prepare_dirs() {
    mkdir -p -- "$PG_DIR" "$PG_RUN"
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 || die "postgres: running as root but there is no 'postgres' user"
        # Check from / downwards so the message names the first blocking folder.
        local dir='' part
        local -a parts
        IFS=/ read -r -a parts <<<"${PG_DIR#/}"
        for part in "${parts[@]::${#parts[@]}-1}"; do
            dir=$dir/$part
            if ! runuser -u postgres -- test -x "$dir"; then
                die "postgres: the postgres user cannot traverse $dir (needed to reach $PG_DIR); run 'chmod o+x $dir' or set USER_OTP_LOCAL_DIR to a reachable folder"
            fi
        done
        chown -R postgres:postgres -- "$PG_DIR"
    fi
    chmod 700 -- "$PG_DIR"
    # The socket path must fit in sun_path (107 bytes).
    local sock=$PG_RUN/.s.PGSQL.$LOCAL_PG_PORT
    ((${#sock} <= 107)) || die "postgres: socket path too long (${#sock} > 107 bytes): $sock; use a shorter USER_OTP_LOCAL_DIR"
}

pg_init() {
    [[ -f $PG_DATA/PG_VERSION ]] && return 0
    log "postgres: initdb in $PG_DATA"
    if ! pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres \
        --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 --no-instructions \
        >"$PG_DIR/initdb.log" 2>&1; then
        show_log "$PG_DIR/initdb.log"
        die "postgres: initdb failed"
    fi
    # Light server settings for a dev/test cluster. Port, listen address and socket
    # directory are given on the command line at each start (they follow the env).
    pg_as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null <<'EOF'

# ---- added by scripts/services (dev/test cluster) ----
shared_buffers = 128MB
max_connections = 200
password_encryption = scram-sha-256
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = -1
EOF
}

# Print the postmaster pid of our cluster, fail when it is not running.
pg_pid() {
    local pid
    pid=$(read_pid "$PG_DATA/postmaster.pid")
    pid_matches "$pid" postgres "$PG_DATA" || return 1
    printf '%s' "$pid"
}
pg_alive() { pg_pid >/dev/null; }
pg_isready_tcp() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$LOCAL_PG_PORT"; }

# psql as the superuser over the unix socket (trust).
pg_psql_admin() {
    "$PG_BIN/psql" -X -q -h "$PG_RUN" -p "$LOCAL_PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}

# The application's view: password login over TCP into its database.
pg_app_ok() {
    PGPASSWORD=$LOCAL_PG_PASSWORD PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -At \
        -h 127.0.0.1 -p "$LOCAL_PG_PORT" -U "$LOCAL_PG_USER" -d "$LOCAL_PG_DB" \
        -c 'select 1' >/dev/null 2>&1
}

# Role (LOGIN CREATEDB, password from the env) and database, created when missing; the
# pg_stat_statements extension in template1 (the server preloads it: see pg_up).
# The password is (re)set on every up so it always matches LOCAL_PG_PASSWORD.
# Also the role user_otp_app (password user_otp_app, LOGIN only: no DDL anywhere unless granted),
# the application user of tests/migrate_credentials.rs, where user_otp owns the schema as
# DIGIT's migration user (FLYWAY_USER) does.
pg_ensure_role_and_db() {
    local out
    if ! out=$(pg_psql_admin -v "user=$LOCAL_PG_USER" -v "pass=$LOCAL_PG_PASSWORD" -v "db=$LOCAL_PG_DB" 2>&1 <<'EOF'
SELECT format('CREATE ROLE %I', :'user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'pass') \gexec
SELECT 'CREATE ROLE user_otp_app'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'user_otp_app') \gexec
ALTER ROLE user_otp_app LOGIN NOCREATEDB NOCREATEROLE PASSWORD 'user_otp_app';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
\connect template1
-- Statement statistics in every database created from now on (tests/validate_timing.rs proves
-- with them that _validate runs the same statements whether or not a code exists).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
EOF
    ); then
        printf '%s\n' "$out" >&2
        pg_fail "could not create role $LOCAL_PG_USER / database $LOCAL_PG_DB"
    fi
}

# TLS for the dev/test cluster: a CA of its own ($PG_TLS/ca.crt, what tests/database_tls.rs
# verifies against) and a server certificate naming localhost only (not 127.0.0.1: verify-full
# to 127.0.0.1 must fail on the name, verify-ca pass), made once; ssl on and
# the files set on every up (ALTER SYSTEM, then a reload). The role user_otp_tls (password
# user_otp_tls, a member of LOCAL_PG_USER) is refused over plain TCP by the first pg_hba.conf
# line, so a test can tell a TLS connection from a plain one.
PG_TLS=$PG_DIR/tls
PG_TLS_HBA='hostnossl all user_otp_tls 127.0.0.1/32 reject'

pg_ensure_tls() {
    command -v openssl >/dev/null || die "postgres: openssl is missing (apt-get install openssl)"
    if [[ ! -s $PG_TLS/server.crt || ! -s $PG_TLS/server.key || ! -s $PG_TLS/ca.crt ]]; then
        log "postgres: making a CA and a server certificate in $PG_TLS"
        mkdir -p -- "$PG_TLS"
        local made=$PG_TLS/openssl.log
        if ! {
            openssl req -x509 -new -nodes -newkey rsa:2048 -days 3650 -subj '/CN=user-otp dev CA' \
                -keyout "$PG_TLS/ca.key" -out "$PG_TLS/ca.crt" &&
                openssl req -new -nodes -newkey rsa:2048 -subj '/CN=localhost' \
                    -keyout "$PG_TLS/server.key" -out "$PG_TLS/server.csr" &&
                printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$PG_TLS/server.ext" &&
                openssl x509 -req -in "$PG_TLS/server.csr" -CA "$PG_TLS/ca.crt" -CAkey "$PG_TLS/ca.key" \
                    -CAcreateserial -days 3650 -extfile "$PG_TLS/server.ext" -out "$PG_TLS/server.crt"
        } >"$made" 2>&1; then
            show_log "$made"
            die "postgres: could not make the TLS certificates"
        fi
        chmod 600 -- "$PG_TLS/server.key" "$PG_TLS/ca.key"
        chmod 644 -- "$PG_TLS/ca.crt" "$PG_TLS/server.crt"
        if ((EUID == 0)); then chown -R postgres:postgres -- "$PG_TLS"; fi
    fi
    local hba=$PG_DATA/pg_hba.conf
    if ! grep -qxF -- "$PG_TLS_HBA" "$hba"; then
        # The first matching line wins in pg_hba.conf; cat into the file keeps its owner.
        { printf '%s\n' "$PG_TLS_HBA"; cat -- "$hba"; } >"$hba.new" && cat -- "$hba.new" >"$hba" && rm -f -- "$hba.new"
    fi
    local out
    if ! out=$(pg_psql_admin -v "cert=$PG_TLS/server.crt" -v "key=$PG_TLS/server.key" -v "user=$LOCAL_PG_USER" 2>&1 <<'EOF'
SELECT format('ALTER SYSTEM SET ssl_cert_file = %L', :'cert') \gexec
SELECT format('ALTER SYSTEM SET ssl_key_file = %L', :'key') \gexec
ALTER SYSTEM SET ssl = on;
SELECT 'CREATE ROLE user_otp_tls'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'user_otp_tls') \gexec
ALTER ROLE user_otp_tls LOGIN NOCREATEDB NOCREATEROLE PASSWORD 'user_otp_tls';
SELECT format('GRANT %I TO user_otp_tls', :'user') \gexec
SELECT pg_reload_conf();
EOF
    ); then
        printf '%s\n' "$out" >&2
        pg_fail "could not turn TLS on"
    fi
    # The reload is asynchronous: wait until TLS is served.
    wait_until 10 "postgres: TLS on 127.0.0.1:$LOCAL_PG_PORT" pg_tls_ok pg_alive ||
        pg_fail "ssl = on but no TLS connection (see $PG_LOG)"
}

pg_tls_ok() {
    PGPASSWORD=user_otp_tls PGCONNECT_TIMEOUT=3 PGSSLMODE=verify-full PGSSLROOTCERT=$PG_TLS/ca.crt \
        "$PG_BIN/psql" -X -q -At -h localhost -p "$LOCAL_PG_PORT" -U user_otp_tls -d "$LOCAL_PG_DB" \
        -c 'select 1' >/dev/null 2>&1
}

pg_fail() {
    show_log "$PG_LOG"
    die "postgres: $*"
}

pg_up() {
    pg_ensure_installed
    mkdir -p -- "$STATE_DIR"
    local pid
    if pid=$(pg_pid); then
        log "postgres: already running (pid $pid), checking it"
        wait_until 30 "postgres: pg_isready 127.0.0.1:$LOCAL_PG_PORT" pg_isready_tcp pg_alive ||
            pg_fail "running (pid $pid) but not ready on 127.0.0.1:$LOCAL_PG_PORT (was it started with another LOCAL_PG_PORT? then: scripts/services down postgres)"
        pg_ensure_role_and_db
        pg_ensure_tls
        pg_app_ok || pg_fail "running but $LOCAL_PG_USER cannot log in to $LOCAL_PG_DB over TCP"
        log "postgres: up at $(pg_address) (pid $pid)"
        return 0
    fi
    if tcp_open 127.0.0.1 "$LOCAL_PG_PORT"; then
        die "postgres: 127.0.0.1:$LOCAL_PG_PORT is already in use by a process this script did not start; stop it or set LOCAL_PG_PORT"
    fi
    pg_prepare_dirs
    pg_init
    log "postgres: starting PostgreSQL $PG_VERSION on 127.0.0.1:$LOCAL_PG_PORT (log: $PG_LOG)"
    # pg_ctl -w waits (with its own -t deadline) until the server accepts connections.
    if ! pg_as_owner "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -s \
        -o "-p $LOCAL_PG_PORT -k '$PG_RUN' -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements" 9>&-; then
        pg_fail "pg_ctl start failed"
    fi
    pid=$(pg_pid) || pg_fail "pg_ctl said started but no postmaster of $PG_DATA is running"
    wait_until 30 "postgres: pg_isready 127.0.0.1:$LOCAL_PG_PORT" pg_isready_tcp pg_alive ||
        pg_fail "not ready on 127.0.0.1:$LOCAL_PG_PORT"
    pg_ensure_role_and_db
    pg_ensure_tls
    pg_app_ok || pg_fail "$LOCAL_PG_USER cannot log in to $LOCAL_PG_DB over TCP with the configured password"
    log "postgres: up at $(pg_address) (pid $pid), database $LOCAL_PG_DB"
}

pg_down() {
    local pid
    if ! pid=$(pg_pid); then
        log "postgres: not running (nothing started by this script)"
        return 0
    fi
    log "postgres: stopping pid $pid (pg_ctl stop -m fast)"
    if pg_as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 -s; then
        log "postgres: stopped"
        return 0
    fi
    warn "postgres: fast shutdown did not finish, trying immediate"
    pg_as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 15 -s && return 0
    # Last resort, only if it is still our postmaster.
    if pid=$(pg_pid); then
        stop_pid postgres "$pid" 10
    fi
}

pg_status() {
    local pid
    if pid=$(pg_pid) && pg_isready_tcp && pg_app_ok; then
        status_line postgres "$(pg_address)" running "pid $pid, db $LOCAL_PG_DB, user $LOCAL_PG_USER, log $PG_LOG"
    elif [[ -n ${pid:-} ]]; then
        status_line postgres "$(pg_address)" stopped "pid $pid alive but not ready or $LOCAL_PG_DB not reachable"
        return 1
    else
        status_line postgres "$(pg_address)" stopped ""
        return 1
    fi
}

pg_logs() { printf '%s\n' "$PG_LOG"; }
