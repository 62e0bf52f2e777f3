#!/usr/bin/env bash
# Single-node KRaft Kafka broker for local development and tests.
#
#   deploy/kafka/kafka.sh start|stop|restart|status|logs [tail args...]
#
# Environment (defaults):
#   KAFKA_PORT             9092             PLAINTEXT listener on 127.0.0.1
#   KAFKA_CONTROLLER_PORT  KAFKA_PORT+1     KRaft controller listener on 127.0.0.1
#   KAFKA_DATA_DIR         <repo>/var/kafka-$KAFKA_PORT   (config, data, log, pid)
#   KAFKA_HEAP             -Xmx512m
#   KAFKA_JVM_OPTS         G1GC flags       other JVM flags (replaces the defaults)
#   KAFKA_START_TIMEOUT    90               seconds to wait for the broker to serve metadata
#   KAFKA_STOP_TIMEOUT     20               seconds between SIGTERM and SIGKILL
#   KAFKA_LIB_DIR          deploy/kafka/lib  jar directory (filled by mvn when it has no kafka jar)
#   KAFKA_VERSION          (pom default)    Kafka version mvn resolves into an empty KAFKA_LIB_DIR,
#                                           e.g. KAFKA_VERSION=3.9.1 KAFKA_LIB_DIR=/tmp/k391/lib
#   JAVA_HOME              (java from PATH when unset)
#
# Optional SASL_SSL listener (off unless KAFKA_SASL_SSL_PORT is set; the PLAINTEXT
# listener above stays as it is, for the readiness probe and inter-broker traffic):
#   KAFKA_SASL_SSL_PORT    (unset)          SASL_SSL listener on 127.0.0.1 (SASL/PLAIN over TLS)
#   KAFKA_SSL_DIR          (required then)  broker.key (PKCS#8 PEM, unencrypted) and
#                                           broker.crt (PEM, leaf first, then any chain);
#                                           with ca.crt too, client certificates from that CA
#                                           are verified when KAFKA_SSL_CLIENT_AUTH asks
#   KAFKA_SASL_USERS       (required then)  user:password[,user:password...]; letters, digits
#                                           and ._~+/=@!#%^*- only
#   KAFKA_SSL_CLIENT_AUTH  none             none|requested|required (mutual TLS)
#
# The jars come from Maven Central via deploy/kafka/pom.xml into deploy/kafka/lib
# (resolved automatically on first start). Needs Java 17+, and mvn only for that
# first resolution. Readiness is checked with kafka_probe.py (stdlib python3; a
# plain TCP check is used when no python3 is available).
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/../.." && pwd -P)"
LIB_DIR="${KAFKA_LIB_DIR:-$SCRIPT_DIR/lib}"
HOST=127.0.0.1

KAFKA_PORT="${KAFKA_PORT:-9092}"
[[ "$KAFKA_PORT" =~ ^[0-9]+$ ]] || { echo "kafka.sh: KAFKA_PORT must be a number, got '$KAFKA_PORT'" >&2; exit 2; }
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
[[ "$KAFKA_CONTROLLER_PORT" =~ ^[0-9]+$ ]] || { echo "kafka.sh: KAFKA_CONTROLLER_PORT must be a number" >&2; exit 2; }
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/var/kafka-$KAFKA_PORT}"
case "$KAFKA_DATA_DIR" in /*) ;; *) KAFKA_DATA_DIR="$PWD/$KAFKA_DATA_DIR" ;; esac
KAFKA_HEAP="${KAFKA_HEAP:--Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"

PROPS="$KAFKA_DATA_DIR/server.properties"
LOG_FILE="$KAFKA_DATA_DIR/broker.log"
PID_FILE="$KAFKA_DATA_DIR/broker.pid"
LOCK_FILE="$KAFKA_DATA_DIR/.kafka.sh.lock"

if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi

log() { echo "kafka.sh[$KAFKA_PORT]: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# python3 for the probe: any interpreter works (stdlib only); venv not required.
find_python() {
    local p
    for p in python3 /usr/bin/python3 python; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import socket, struct' >/dev/null 2>&1; then
            command -v "$p"; return 0
        fi
    done
    return 1
}
PYTHON="$(find_python || true)"

tcp_open() {  # tcp_open PORT -> 0 if something accepts connections
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# probe -> 0: Kafka serving metadata, 1: answers but not (ready) Kafka, 2: nothing listening.
PROBE_OUT=""
probe() {
    if [[ -n "$PYTHON" ]]; then
        local rc=0
        PROBE_OUT="$("$PYTHON" "$SCRIPT_DIR/kafka_probe.py" "$HOST" "$KAFKA_PORT" 3 2>&1)" || rc=$?
        case "$rc" in 0|1|2) return "$rc" ;; *) ;; esac
        log "probe failed unexpectedly (rc=$rc): $PROBE_OUT; falling back to a TCP check"
    fi
    if tcp_open "$KAFKA_PORT"; then PROBE_OUT="tcp port open (no metadata check)"; return 0; fi
    PROBE_OUT="nothing listening"; return 2
}

# pid of the broker this script started for this data dir, if it is alive.
our_pid() {
    [[ -s "$PID_FILE" ]] || return 1
    local pid; pid="$(<"$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: must be our java kafka.Kafka with our config.
    if [[ -r "/proc/$pid/cmdline" ]]; then
        local cmd; cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
        [[ "$cmd" == *kafka.Kafka*"$PROPS"* ]] || return 1
    fi
    echo "$pid"
}

log_tail() {
    if [[ -f "$LOG_FILE" ]]; then
        echo "----- last 40 lines of $LOG_FILE -----" >&2
        tail -n 40 "$LOG_FILE" >&2 || true
        echo "-----" >&2
    fi
}

ensure_jars() {
    if [[ -d "$LIB_DIR" ]] && compgen -G "$LIB_DIR/kafka_2.13-*.jar" >/dev/null; then return 0; fi
    command -v mvn >/dev/null 2>&1 || die "$LIB_DIR has no Kafka jars and mvn is not installed"
    log "resolving Kafka jars into $LIB_DIR (mvn, first run only)..."
    local version_opt=()
    [[ -n "${KAFKA_VERSION:-}" ]] && version_opt=("-Dkafka.version=$KAFKA_VERSION")
    local mvn_log; mvn_log="$(mktemp "${TMPDIR:-/tmp}/kafka-mvn.XXXXXX")"
    if ! mvn -q -B -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" "${version_opt[@]}" \
            dependency:copy-dependencies -DoutputDirectory="$LIB_DIR" -DincludeScope=runtime \
            >"$mvn_log" 2>&1; then
        cat "$mvn_log" >&2; rm -f "$mvn_log"
        die "mvn dependency:copy-dependencies failed"
    fi
    rm -f "$mvn_log"
    compgen -G "$LIB_DIR/kafka_2.13-*.jar" >/dev/null || die "mvn ran but $LIB_DIR has no kafka_2.13 jar"
}

java_cp() {  # run a Kafka main class in the foreground
    "$JAVA" $KAFKA_HEAP -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.properties" \
        -cp "$LIB_DIR/*" "$@"
}

render_config() {
    mkdir -p "$KAFKA_DATA_DIR/data"
    local tmp="$PROPS.tmp.$$"
    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@KAFKA_DATA_DIR@|$KAFKA_DATA_DIR|g" \
        "$SCRIPT_DIR/server.properties" >"$tmp"
    if [[ -n "${KAFKA_SASL_SSL_PORT:-}" ]]; then add_sasl_ssl_listener "$tmp"; fi
    mv -f "$tmp" "$PROPS"
}

# add_sasl_ssl_listener FILE: a SASL_SSL listener (SASL/PLAIN, PEM key store) in FILE.
# PLAIN, not SCRAM: its users live in the listener's JAAS line, so they can change with a
# restart, whereas SCRAM users of a KRaft cluster are written at format time (or through
# the admin API). The rendered file holds the passwords: it is made readable by its owner only.
add_sasl_ssl_listener() {
    local file="$1" port="$KAFKA_SASL_SSL_PORT" ssl_dir="${KAFKA_SSL_DIR:-}"
    local auth="${KAFKA_SSL_CLIENT_AUTH:-none}" users="${KAFKA_SASL_USERS:-}" jaas entry name pass
    [[ "$port" =~ ^[0-9]+$ ]] || die "KAFKA_SASL_SSL_PORT must be a number, got '$port'"
    [[ -n "$ssl_dir" && -r "$ssl_dir/broker.key" && -r "$ssl_dir/broker.crt" ]] \
        || die "KAFKA_SSL_DIR must hold broker.key and broker.crt (PEM) when KAFKA_SASL_SSL_PORT is set"
    case "$ssl_dir" in /*) ;; *) ssl_dir="$PWD/$ssl_dir" ;; esac
    [[ "$auth" =~ ^(none|requested|required)$ ]] || die "KAFKA_SSL_CLIENT_AUTH must be none, requested or required"
    [[ -n "$users" ]] || die "KAFKA_SASL_USERS (user:password,...) is required when KAFKA_SASL_SSL_PORT is set"
    jaas="org.apache.kafka.common.security.plain.PlainLoginModule required"
    local -a entries
    IFS=',' read -r -a entries <<<"$users"
    for entry in "${entries[@]}"; do
        name="${entry%%:*}"; pass="${entry#*:}"
        [[ "$entry" == *:* && "$name" =~ ^[A-Za-z0-9._-]+$ && "$pass" =~ ^[A-Za-z0-9._~+/=@!#%^*-]+$ ]] \
            || die "KAFKA_SASL_USERS: each entry must be user:password (letters, digits, ._~+/=@!#%^*-)"
        jaas+=" user_$name=\"$pass\""
    done
    jaas+=";"
    # Key and certificate chain in one PEM key store (ssl.keystore.type=PEM).
    (umask 077; cat "$ssl_dir/broker.key" "$ssl_dir/broker.crt" >"$KAFKA_DATA_DIR/broker-keystore.pem")
    chmod 600 "$file"
    sed -i -e "s|^listeners=\(.*\)$|listeners=\1,SASL_SSL://$HOST:$port|" \
        -e "s|^advertised.listeners=\(.*\)$|advertised.listeners=\1,SASL_SSL://$HOST:$port|" \
        -e "s|^listener.security.protocol.map=\(.*\)$|listener.security.protocol.map=\1,SASL_SSL:SASL_SSL|" \
        "$file"
    {
        echo
        echo "############################# SASL_SSL listener (kafka.sh) #############################"
        echo "sasl.enabled.mechanisms=PLAIN"
        echo "listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN"
        echo "listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas"
        echo "listener.name.sasl_ssl.ssl.keystore.type=PEM"
        echo "listener.name.sasl_ssl.ssl.keystore.location=$KAFKA_DATA_DIR/broker-keystore.pem"
        echo "listener.name.sasl_ssl.ssl.client.auth=$auth"
        if [[ -r "$ssl_dir/ca.crt" ]]; then
            echo "listener.name.sasl_ssl.ssl.truststore.type=PEM"
            echo "listener.name.sasl_ssl.ssl.truststore.location=$ssl_dir/ca.crt"
        fi
    } >>"$file"
}

format_storage() {
    [[ -f "$KAFKA_DATA_DIR/data/meta.properties" ]] && return 0
    local cluster_id
    cluster_id="$(java_cp kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "could not generate a cluster id (got '$cluster_id')"
    log "formatting $KAFKA_DATA_DIR/data (cluster id $cluster_id)"
    java_cp kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" >>"$KAFKA_DATA_DIR/format.log" 2>&1 \
        || { tail -n 20 "$KAFKA_DATA_DIR/format.log" >&2; die "storage format failed"; }
}

wait_ready() {  # wait_ready PID
    local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT)) rc
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log_tail; rm -f "$PID_FILE"
            die "broker (pid $pid) exited during startup"
        fi
        rc=0; probe || rc=$?
        if [[ $rc -eq 0 ]]; then log "ready on $HOST:$KAFKA_PORT (pid $pid; $PROBE_OUT)"; return 0; fi
        if (( SECONDS >= deadline )); then
            log_tail
            log "ERROR: broker did not serve metadata on $HOST:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s (last probe: $PROBE_OUT); stopping it"
            stop_pid "$pid" || true
            exit 1
        fi
        sleep 0.5
    done
}

stop_pid() {  # stop_pid PID: SIGTERM, wait, SIGKILL
    local pid="$1" deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS >= deadline )); then
            log "still running after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL to $pid"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.25
    done
    rm -f "$PID_FILE"
    ! kill -0 "$pid" 2>/dev/null
}

with_lock() {  # serialize start/stop on the same data dir
    mkdir -p "$KAFKA_DATA_DIR"
    exec 9>"$LOCK_FILE"
    flock -w $((KAFKA_START_TIMEOUT + KAFKA_STOP_TIMEOUT + 30)) 9 || die "could not lock $LOCK_FILE"
}

cmd_start() {
    with_lock
    local pid rc
    if pid="$(our_pid)"; then
        log "already started by this script (pid $pid)"
        wait_ready "$pid"
        return 0
    fi
    rm -f "$PID_FILE"

    rc=0; probe || rc=$?
    case "$rc" in
        0) log "port $KAFKA_PORT is already served by a Kafka broker not started from $KAFKA_DATA_DIR ($PROBE_OUT); using it"
           return 0 ;;
        1) die "port $KAFKA_PORT is in use by something that is not a usable Kafka broker: $PROBE_OUT" ;;
    esac
    if tcp_open "$KAFKA_CONTROLLER_PORT"; then
        die "controller port $KAFKA_CONTROLLER_PORT is already in use (set KAFKA_CONTROLLER_PORT)"
    fi
    if [[ -n "${KAFKA_SASL_SSL_PORT:-}" ]] && tcp_open "$KAFKA_SASL_SSL_PORT"; then
        die "SASL_SSL port $KAFKA_SASL_SSL_PORT is already in use (set KAFKA_SASL_SSL_PORT)"
    fi

    command -v "$JAVA" >/dev/null 2>&1 || die "java not found (install Java 17+ or set JAVA_HOME)"
    ensure_jars
    render_config
    format_storage

    [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
    log "starting broker on $HOST:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT, data $KAFKA_DATA_DIR)"
    if [[ -n "${KAFKA_SASL_SSL_PORT:-}" ]]; then log "SASL_SSL listener on $HOST:$KAFKA_SASL_SSL_PORT (SASL/PLAIN)"; fi
    # setsid + nohup: own session, survives this script and its terminal. The child
    # writes its own pid (then execs java), so the pid file is java's pid even if
    # setsid forks. fd 9 (lock) is closed; no std fds are inherited from the caller.
    # shellcheck disable=SC2016
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-broker "$PID_FILE" \
        "$JAVA" $KAFKA_HEAP $KAFKA_JVM_OPTS \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.properties" \
        -Dkafka.logs.dir="$KAFKA_DATA_DIR" \
        -cp "$LIB_DIR/*" kafka.Kafka "$PROPS" \
        </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    local i
    for i in $(seq 1 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
    [[ -s "$PID_FILE" ]] || { log_tail; die "broker process did not start"; }
    wait_ready "$(<"$PID_FILE")"
}

cmd_stop() {
    with_lock
    local pid
    if ! pid="$(our_pid)"; then
        rm -f "$PID_FILE"
        log "not running (no broker started from $KAFKA_DATA_DIR)"
        return 0
    fi
    log "stopping broker (pid $pid)"
    stop_pid "$pid" || die "could not stop pid $pid"
    log "stopped"
}

cmd_status() {
    local pid rc=0
    probe || rc=$?
    if pid="$(our_pid)"; then
        if [[ $rc -eq 0 ]]; then echo "running on $HOST:$KAFKA_PORT"; log "pid $pid, $PROBE_OUT"; return 0; fi
        echo "starting or unhealthy (pid $pid): $PROBE_OUT"; return 1
    fi
    if [[ $rc -eq 0 ]]; then
        echo "running on $HOST:$KAFKA_PORT"; log "not started from $KAFKA_DATA_DIR; $PROBE_OUT"; return 0
    fi
    echo "not running ($HOST:$KAFKA_PORT: $PROBE_OUT)"; return 1
}

cmd_logs() {
    [[ -f "$LOG_FILE" ]] || die "no log at $LOG_FILE"
    if [[ $# -gt 0 ]]; then exec tail "$@" "$LOG_FILE"; fi
    exec tail -n 100 "$LOG_FILE"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    start)   cmd_start ;;
    stop)    cmd_stop ;;
    restart) ( cmd_stop ); cmd_start ;;
    status)  cmd_status ;;
    logs)    shift; cmd_logs "$@" ;;
    *)       usage ;;
esac
