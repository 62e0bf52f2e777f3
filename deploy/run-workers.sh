#!/usr/bin/env bash
# make run-workers: the local broker (unless KAFKA_BOOTSTRAP_SERVERS/SREC_BOOTSTRAP_SERVERS
# points at a cluster), the topics, the demo catalog if `items` is empty, WORKERS workers
# and the trainer (collaborative item factors from the feedback stream).
# EMBED_WORKERS=m (default 0) starts the two-stage topology instead: m embed-only workers
# (SREC_ROLE=embed: encode queries, e.g. on GPUs) and the WORKERS as rank workers
# (SREC_ROLE=rank: answer the encoded queries next to the user state).
# Ctrl-C stops the workers (the broker keeps running: make kafka-down).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}  # PY: another interpreter (tests of this script use a stand-in)
WORKERS=${WORKERS:-1}
EMBED_WORKERS=${EMBED_WORKERS:-0}
ROLE=all
((EMBED_WORKERS > 0)) && ROLE=rank
# workers on one machine share its cores: each encodes with cores / workers torch threads
# (two workers with torch's default of one thread per core slow each other down)
if [[ -z "${SREC_TORCH_THREADS:-}" ]] && ((WORKERS + EMBED_WORKERS > 1)); then
  threads=$(( $(nproc) / (WORKERS + EMBED_WORKERS) ))
  export SREC_TORCH_THREADS=$(( threads > 0 ? threads : 1 ))
fi
BASE_PORT=${SREC_WEB_PORT:-6066}

if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}${SREC_BOOTSTRAP_SERVERS:-}" ]]; then
  deploy/kafka/kafka.sh start
  export SREC_BOOTSTRAP_SERVERS="127.0.0.1:${KAFKA_PORT:-9092}"
fi
export SREC_BOOTSTRAP_SERVERS="${SREC_BOOTSTRAP_SERVERS:-$KAFKA_BOOTSTRAP_SERVERS}"

$PY -m streaming_rec topics
$PY -m streaming_rec demo-catalog --if-empty

mkdir -p var/log
pids=()
names=()
logs=()
ports=()
for ((i = 0; i < WORKERS; i++)); do
  port=$((BASE_PORT + i))
  SREC_WEB_PORT=$port SREC_DATA_DIR="var/worker-$i" SREC_WORKER_NAME="worker-$i" \
    SREC_ROLE=$ROLE $PY -m streaming_rec worker >"var/log/worker-$i.log" 2>&1 &
  pids+=("$!") names+=("worker-$i") logs+=("var/log/worker-$i.log")
  ports+=(--port "$port")
done
for ((i = 0; i < EMBED_WORKERS; i++)); do
  port=$((BASE_PORT + 100 + i))
  SREC_WEB_PORT=$port SREC_DATA_DIR="var/embed-$i" SREC_WORKER_NAME="embed-$i" \
    SREC_ROLE=embed $PY -m streaming_rec worker >"var/log/embed-$i.log" 2>&1 &
  pids+=("$!") names+=("embed-$i") logs+=("var/log/embed-$i.log")
  ports+=(--port "$port")
done
TRAINER_PORT=${SREC_TRAINER_WEB_PORT:-6099}
SREC_TRAINER_WEB_PORT=$TRAINER_PORT SREC_DATA_DIR=var/trainer \
  $PY -m streaming_rec trainer >var/log/trainer.log 2>&1 &
pids+=("$!") names+=(trainer) logs+=(var/log/trainer.log)
GATEWAY_PORT=${SREC_GATEWAY_PORT:-8000}  # the HTTP API and the demo page (streaming-rec gateway)
SREC_GATEWAY_PORT=$GATEWAY_PORT $PY -m streaming_rec gateway >var/log/gateway.log 2>&1 &
pids+=("$!") names+=(gateway) logs+=(var/log/gateway.log)
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true; wait' INT TERM EXIT

# which process has exited (its index in pids), or nothing while all are running
first_dead() {
  local i
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "$i"
      return
    fi
  done
}

# name the dead process, its exit status and the end of its log; stop the others
died() {
  local i=$1 status=0
  wait "${pids[$i]}" || status=$?
  echo >&2
  echo "${names[$i]} (pid ${pids[$i]}) exited with status $status; last lines of ${logs[$i]}:" >&2
  tail -n "${LOG_TAIL_LINES:-40}" "${logs[$i]}" | sed 's/^/  | /' >&2
  echo "stopping the others" >&2
  exit 1
}

echo "starting $WORKERS worker(s) (role $ROLE), $EMBED_WORKERS embed worker(s), the trainer and the gateway; logs in var/log/"
# wait-ready in the background, checking every second that no process has died meanwhile
$PY -m streaming_rec wait-ready "${ports[@]}" --port "$TRAINER_PORT" --port "$GATEWAY_PORT" --timeout 600 &
waiter=$!
while kill -0 "$waiter" 2>/dev/null; do
  dead=$(first_dead)
  if [[ -n "$dead" ]]; then
    kill "$waiter" 2>/dev/null || true
    died "$dead"
  fi
  sleep 1
done
wait "$waiter"
echo
echo "ready: $WORKERS worker(s) on ${SREC_BOOTSTRAP_SERVERS:-$KAFKA_BOOTSTRAP_SERVERS}, health on http://127.0.0.1:$BASE_PORT/health"
echo "ask from another shell:"
echo "  SREC_BOOTSTRAP_SERVERS=$SREC_BOOTSTRAP_SERVERS .venv/bin/streaming-rec ask 'a funny animated film for children' -u alice"
echo "demo page: http://127.0.0.1:$GATEWAY_PORT/   HTTP API: http://127.0.0.1:$GATEWAY_PORT/docs"
echo
while true; do
  dead=$(first_dead)
  [[ -n "$dead" ]] && died "$dead"
  sleep 1
done
