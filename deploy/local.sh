#!/usr/bin/env bash
# Run the whole Growth Diary backend on one machine, without containers.
#
#   deploy/local.sh install            venv + editable install (skipped when up to date)
#   deploy/local.sh run [SVC...]       all: bootstrap DB, keys, migrate, start what is not
#                                      running, gateway, wait until ready.
#                                      SVC: deploy that service alone (migrate, then start it,
#                                      or roll it if it is running).
#   deploy/local.sh restart SVC...     graceful rolling restart (web: HUP, worker: TERM+start)
#   deploy/local.sh stop [SVC...]      graceful stop (TERM, 30 s, then KILL); all: gateway too
#   deploy/local.sh status             what runs where; exit 3 if anything is down
#   deploy/local.sh logs [SVC]         follow the logs
#
# Everything lives under var/: run/*.pid, log/*.log, nginx/ (rendered gateway config),
# prometheus/<svc>/ (gunicorn multiprocess metrics), keys/ (auth signing keys), mail/.
# Only processes named in var/run/*.pid are ever signalled, and only after checking that the
# pid still runs the command we started (a pid can be reused after a crash).
#
# Environment (also read from .env, which never overrides the real environment):
# GATEWAY_PORT, AUTH_PORT..STORIES_PORT, WEB_CONCURRENCY, AUTH_KEYS_DIR, MAIL_DIR,
# READY_TIMEOUT (60), STOP_TIMEOUT (30), NGINX (path to the binary).

set -euo pipefail
set +m # no job control: background jobs stay in our process group until setsid moves them

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_SERVICES=(auth goals diary stories)
declare -A DEFAULT_PORT=([auth]=8001 [goals]=8002 [diary]=8003 [stories]=8004)

# --- environment -------------------------------------------------------------------------

load_dotenv() {
    # KEY=VALUE lines; comments and blanks skipped; optional surrounding quotes removed.
    local file="$ROOT/.env" line key value
    [[ -f "$file" ]] || return 0
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line#"${line%%[![:space:]]*}"}"
        [[ -z "$line" || "$line" == \#* ]] && continue
        line="${line#export }"
        [[ "$line" == *=* ]] || continue
        key="${line%%=*}"
        value="${line#*=}"
        [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then
            value="${BASH_REMATCH[1]}"
        fi
        [[ -n "${!key:-}" ]] || export "$key=$value"
    done <"$file"
}
load_dotenv

VENV="$ROOT/.venv"
PY="$VENV/bin/python"
VAR="$ROOT/var"
RUN_DIR="$VAR/run"
LOG_DIR="$VAR/log"
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
AUTH_KEYS_DIR="${AUTH_KEYS_DIR:-var/keys}"
MAIL_DIR="${MAIL_DIR:-var/mail}"
export PYTHONUNBUFFERED=1

port_of() {
    local var="${1^^}_PORT"
    echo "${!var:-${DEFAULT_PORT[$1]}}"
}

say() { printf '%s\n' "$*"; }
now_ms() {
    local us="${EPOCHREALTIME//[^0-9]/}"
    echo $((us / 1000))
}
err() { printf 'local.sh: %s\n' "$*" >&2; }

check_services() {
    local svc known k
    for svc in "$@"; do
        known=0
        for k in "${ALL_SERVICES[@]}"; do [[ "$svc" == "$k" ]] && known=1; done
        if ((known == 0)); then
            err "unknown service '$svc' (one of: ${ALL_SERVICES[*]})"
            exit 2
        fi
    done
}

# --- install -------------------------------------------------------------------------------

cmd_install() {
    local stamp="$VENV/.installed"
    if [[ ! -x "$PY" ]]; then
        say "creating virtualenv .venv"
        python3 -m venv "$VENV"
    fi
    if [[ -f "$stamp" && "$stamp" -nt "$ROOT/pyproject.toml" ]]; then
        return 0
    fi
    say "installing growth-diary into .venv (pip install -e '.[test]')"
    "$PY" -m pip install --quiet -e "$ROOT[test]"
    touch "$stamp"
}

# --- nginx ---------------------------------------------------------------------------------

NGINX="${NGINX:-}"

ensure_nginx() {
    if [[ -z "$NGINX" ]]; then
        NGINX="$(command -v nginx || true)"
        [[ -z "$NGINX" && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    fi
    if [[ -n "$NGINX" && -x "$NGINX" ]]; then
        return 0
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        err "nginx is not installed; run as root or: sudo apt-get install -y nginx-light"
        exit 1
    fi
    say "installing nginx-light (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
    NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
}

nginx_args() {
    printf '%s\n' -p "$VAR/nginx" -e "$LOG_DIR/nginx-error.log" -c "$VAR/nginx/nginx.conf"
}

render_nginx() {
    mkdir -p "$VAR/nginx"
    "$PY" "$ROOT/deploy/render_nginx.py" local --root "$ROOT"
    local -a args
    mapfile -t args < <(nginx_args)
    if ! "$NGINX" -t -q "${args[@]}"; then
        err "the rendered gateway config var/nginx/nginx.conf does not pass nginx -t"
        return 1
    fi
}

start_gateway() {
    local -a args
    mapfile -t args < <(nginx_args)
    render_nginx
    local pid
    if pid="$(live_pid nginx)"; then
        "$NGINX" "${args[@]}" -s reload
        sleep 0.5 # the reload is asynchronous: let new workers take over before checking
        say "gateway: already running (pid $pid), configuration reloaded"
        return 0
    fi
    rm -f "$RUN_DIR/nginx.pid"
    "$NGINX" "${args[@]}"
    # nginx daemonises and writes its own pid file (pid directive in the rendered config).
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$RUN_DIR/nginx.pid" ]] && break
        sleep 0.1
    done
    say "gateway: started (pid $(cat "$RUN_DIR/nginx.pid" 2>/dev/null || echo '?'))"
}

# --- processes -----------------------------------------------------------------------------

# The marker a live pid's command line must contain to be recognised as ours.
marker_of() {
    case "$1" in
    nginx) echo "nginx" ;;
    *-web) echo "services.${1%-web}.app" ;;
    *-worker) echo "services.${1%-worker}.worker" ;;
    esac
}

# Print the pid of a running process we started under NAME; fail if there is none.
live_pid() {
    local name="$1" file="$RUN_DIR/$1.pid" pid cmdline
    [[ -s "$file" ]] || return 1
    pid="$(tr -dc '0-9' <"$file")"
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    [[ "$cmdline" == *"$(marker_of "$name")"* ]] || return 1
    # a zombie is not running
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]] || return 1
    echo "$pid"
}

# spawn NAME CMD... : start CMD detached (own session, so a forced stop can take its whole
# process group), output appended to var/log/NAME.log, pid in var/run/NAME.pid.
spawn() {
    local name="$1"
    shift
    local log="$LOG_DIR/$name.log"
    printf '\n=== %s starting: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
    setsid nohup "$@" </dev/null >>"$log" 2>&1 &
    echo "$!" >"$RUN_DIR/$name.pid"
}

start_web() {
    local svc="$1" pid
    if pid="$(live_pid "$svc-web")"; then
        say "$svc-web: already running (pid $pid)"
        return 0
    fi
    local prom="$VAR/prometheus/$svc"
    rm -rf "$prom"
    mkdir -p "$prom"
    spawn "$svc-web" env SERVICE="$svc" BIND="127.0.0.1:$(port_of "$svc")" \
        PROMETHEUS_MULTIPROC_DIR="$prom" \
        "$VENV/bin/gunicorn" --config deploy/gunicorn.conf.py "services.$svc.app:create_app()"
    say "$svc-web: started (pid $(cat "$RUN_DIR/$svc-web.pid")) on 127.0.0.1:$(port_of "$svc")"
}

start_worker() {
    local svc="$1" pid
    if pid="$(live_pid "$svc-worker")"; then
        say "$svc-worker: already running (pid $pid)"
        return 0
    fi
    # The worker keeps its metrics in-process: the multiprocess dir belongs to gunicorn.
    spawn "$svc-worker" env -u PROMETHEUS_MULTIPROC_DIR SERVICE="$svc" \
        "$PY" -m "services.$svc.worker"
    say "$svc-worker: started (pid $(cat "$RUN_DIR/$svc-worker.pid"))"
}

# stop_names NAME... : TERM (nginx: QUIT, its graceful stop), wait STOP_TIMEOUT, then KILL the
# leftovers' process groups (each was started in its own session). Removes the pid files.
stop_names() {
    local -a names=() pids=()
    local name pid
    for name in "$@"; do
        if pid="$(live_pid "$name")"; then
            names+=("$name")
            pids+=("$pid")
            if [[ "$name" == nginx ]]; then
                kill -QUIT "$pid" 2>/dev/null || true
            else
                kill -TERM "$pid" 2>/dev/null || true
            fi
            say "$name: stopping (pid $pid)"
        else
            rm -f "$RUN_DIR/$name.pid"
        fi
    done
    ((${#pids[@]})) || return 0
    local deadline=$(($(now_ms) + STOP_TIMEOUT * 1000)) alive i
    while :; do
        alive=0
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; then
                alive=1
            fi
        done
        ((alive)) || break
        (($(now_ms) < deadline)) || break
        sleep 0.2
    done
    for i in "${!pids[@]}"; do
        pid="${pids[$i]}"
        name="${names[$i]}"
        if kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; then
            err "$name: still running after ${STOP_TIMEOUT}s, killing (pid $pid)"
            if [[ "$name" == nginx ]]; then
                kill -KILL "$pid" 2>/dev/null || true
            else
                kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        rm -f "$RUN_DIR/$name.pid"
    done
}

# --- readiness -----------------------------------------------------------------------------

http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
}

# wait_ready SVC... : until every gateway /<svc>/readyz answers 200 (READY_TIMEOUT seconds).
wait_ready() {
    local -a pending=("$@")
    local deadline=$(($(now_ms) + READY_TIMEOUT * 1000)) svc code name
    local -A last=()
    while ((${#pending[@]})); do
        local -a still=()
        for svc in "${pending[@]}"; do
            code="$(http_code "http://127.0.0.1:$GATEWAY_PORT/$svc/readyz")"
            last[$svc]="$code"
            if [[ "$code" != 200 ]]; then
                still+=("$svc")
                # a process that died will not become ready: fail now, not in a minute
                for name in "$svc-web" "$svc-worker"; do
                    if ! live_pid "$name" >/dev/null; then
                        err "$name exited during start-up"
                        show_failure "$svc" "exited"
                        return 1
                    fi
                done
            fi
        done
        pending=("${still[@]+"${still[@]}"}")
        ((${#pending[@]})) || break
        if (($(now_ms) >= deadline)); then
            err "not ready after ${READY_TIMEOUT}s: ${pending[*]}"
            for svc in "${pending[@]}"; do
                show_failure "$svc" "readyz answered '${last[$svc]:-none}'"
            done
            return 1
        fi
        sleep 0.5
    done
}

show_failure() {
    local svc="$1" why="$2" name direct
    direct="http://127.0.0.1:$(port_of "$svc")/$svc/readyz"
    err "$svc: $why (http://127.0.0.1:$GATEWAY_PORT/$svc/readyz)"
    err "$svc: directly, $direct answers '$(http_code "$direct")'"
    for name in "$svc-web" "$svc-worker"; do
        printf -- '--- tail of var/log/%s.log ---\n' "$name" >&2
        tail -n 20 "$LOG_DIR/$name.log" >&2 2>/dev/null || true
    done
    printf -- '--- tail of var/log/nginx-error.log ---\n' >&2
    tail -n 5 "$LOG_DIR/nginx-error.log" >&2 2>/dev/null || true
}

print_table() {
    local svc pid_w pid_k
    local gw="http://127.0.0.1:$GATEWAY_PORT"
    say ""
    say "growth diary is running"
    printf '  %-9s %s\n' gateway "$gw   (JSON access log: var/log/nginx-access.log)"
    printf '  %-9s %-24s %-34s %-8s %-8s %s\n' service direct docs web worker logs
    for svc in "${ALL_SERVICES[@]}"; do
        pid_w="$(live_pid "$svc-web" || echo -)"
        pid_k="$(live_pid "$svc-worker" || echo -)"
        printf '  %-9s %-24s %-34s %-8s %-8s %s\n' "$svc" "http://127.0.0.1:$(port_of "$svc")" \
            "$gw/$svc/docs" "$pid_w" "$pid_k" "var/log/$svc-{web,worker}.log"
    done
    printf '  %-9s %s\n' metrics "http://127.0.0.1:<port>/metrics (direct only, not via the gateway)"
    printf '  %-9s %s\n' mail "$MAIL_DIR/   (outgoing mail is written here)"
    printf '  %-9s %s\n' keys "$AUTH_KEYS_DIR/"
    printf '  %-9s %s\n' stop "make stop   (status: make status, logs: make logs)"
}

# --- commands ------------------------------------------------------------------------------

prepare() {
    mkdir -p "$RUN_DIR" "$LOG_DIR" "$VAR/nginx" "$VAR/prometheus" "$MAIL_DIR"
    cmd_install
    ensure_nginx
    say "database: bootstrap"
    "$PY" -m shared.bootstrap
}

ensure_keys() {
    mkdir -p "$AUTH_KEYS_DIR"
    chmod 700 "$AUTH_KEYS_DIR"
    if ! compgen -G "$AUTH_KEYS_DIR/*.pem" >/dev/null; then
        say "auth: generating a signing key in $AUTH_KEYS_DIR"
        AUTH_KEYS_DIR="$AUTH_KEYS_DIR" "$PY" -m shared.keys generate
    fi
}

migrate() {
    local svc
    for svc in "$@"; do
        say "$svc: migrate"
        if ! "$PY" -m shared.migrate "$svc" upgrade head; then
            err "$svc: migration failed (python -m shared.migrate $svc upgrade head); stopping here"
            exit 1
        fi
    done
}

cmd_run() {
    local -a targets=("$@")
    check_services "${targets[@]+"${targets[@]}"}"
    prepare
    if ((${#targets[@]} == 0)); then
        ensure_keys
        migrate "${ALL_SERVICES[@]}"
        local svc
        for svc in "${ALL_SERVICES[@]}"; do
            start_web "$svc"
            start_worker "$svc"
        done
        start_gateway
        say "waiting for readiness (up to ${READY_TIMEOUT}s)"
        wait_ready "${ALL_SERVICES[@]}" || return 1
        print_table
        return 0
    fi
    # Deploy the named services alone: migrate, then start or roll them.
    local svc
    for svc in "${targets[@]}"; do
        [[ "$svc" == auth ]] && ensure_keys
        migrate "$svc"
        roll "$svc"
    done
    start_gateway
    wait_ready "${targets[@]}" || return 1
    say "deployed: ${targets[*]}"
}

# roll SVC: web gets HUP (gunicorn starts new workers on the new code, then retires the old
# ones gracefully; the listening socket never closes). The worker is stopped gracefully and
# started again: its in-hand message is acked or redelivered, so nothing is lost.
roll() {
    local svc="$1" pid
    if pid="$(live_pid "$svc-web")"; then
        say "$svc-web: graceful reload (HUP pid $pid)"
        kill -HUP "$pid"
    else
        start_web "$svc"
    fi
    stop_names "$svc-worker"
    start_worker "$svc"
}

cmd_restart() {
    (($#)) || {
        err "usage: local.sh restart SVC..."
        exit 2
    }
    check_services "$@"
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    local svc
    for svc in "$@"; do
        roll "$svc"
    done
    if live_pid nginx >/dev/null; then
        wait_ready "$@" || return 1
    fi
    say "restarted: $*"
}

cmd_stop() {
    check_services "$@"
    mkdir -p "$RUN_DIR"
    local -a names=()
    local svc
    if (($# == 0)); then
        names+=(nginx)
        set -- "${ALL_SERVICES[@]}"
    fi
    for svc in "$@"; do names+=("$svc-web" "$svc-worker"); done
    stop_names "${names[@]}"
    say "stopped"
}

cmd_status() {
    local svc name pid code down=0
    local gw="http://127.0.0.1:$GATEWAY_PORT"
    if pid="$(live_pid nginx)"; then
        printf '%-16s running  pid %-8s %s\n' gateway "$pid" "$gw"
    else
        printf '%-16s stopped\n' gateway
        down=1
    fi
    for svc in "${ALL_SERVICES[@]}"; do
        for name in "$svc-web" "$svc-worker"; do
            if pid="$(live_pid "$name")"; then
                if [[ "$name" == *-web ]]; then
                    code="$(http_code "http://127.0.0.1:$(port_of "$svc")/$svc/readyz")"
                    printf '%-16s running  pid %-8s %s  readyz %s\n' "$name" "$pid" \
                        "http://127.0.0.1:$(port_of "$svc")" "$code"
                    [[ "$code" == 200 ]] || down=1
                else
                    printf '%-16s running  pid %s\n' "$name" "$pid"
                fi
            else
                printf '%-16s stopped\n' "$name"
                down=1
            fi
        done
    done
    ((down == 0)) || return 3
}

cmd_logs() {
    check_services "$@"
    mkdir -p "$LOG_DIR"
    local -a files=()
    if (($#)); then
        local svc
        for svc in "$@"; do files+=("$LOG_DIR/$svc-web.log" "$LOG_DIR/$svc-worker.log"); done
    else
        files=("$LOG_DIR"/*.log)
    fi
    exec tail -n 50 -F "${files[@]}"
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

main() {
    local cmd="${1:-}"
    (($#)) && shift
    case "$cmd" in
    install) cmd_install ;;
    run | start) cmd_run "$@" ;;
    restart) cmd_restart "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    render-nginx) render_nginx_only ;;
    -h | --help | help | "") usage ;;
    *)
        err "unknown command '$cmd'"
        usage >&2
        exit 2
        ;;
    esac
}

render_nginx_only() {
    ensure_nginx
    render_nginx
    say "rendered var/nginx/nginx.conf (nginx -t ok)"
}

main "$@"
