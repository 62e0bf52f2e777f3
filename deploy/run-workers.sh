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
PY=.venv/bin/python
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
ports=()
for ((i = 0; i < WORKERS; i++)); do
  port=$((BASE_PORT + i))
  SREC_WEB_PORT=$port SREC_DATA_DIR="var/worker-$i" SREC_WORKER_NAME="worker-$i" \
    SREC_ROLE=$ROLE $PY -m streaming_rec worker >"var/log/worker-$i.log" 2>&1 &
  pids+=("$!")
  ports+=(--port "$port")
done
for ((i = 0; i < EMBED_WORKERS; i++)); do
  port=$((BASE_PORT + 100 + i))
  SREC_WEB_PORT=$port SREC_DATA_DIR="var/embed-$i" SREC_WORKER_NAME="embed-$i" \
    SREC_ROLE=embed $PY -m streaming_rec worker >"var/log/embed-$i.log" 2>&1 &
  pids+=("$!")
  ports+=(--port "$port")
done
TRAINER_PORT=${SREC_TRAINER_WEB_PORT:-6099}
SREC_TRAINER_WEB_PORT=$TRAINER_PORT SREC_DATA_DIR=var/trainer \
  $PY -m streaming_rec trainer >var/log/trainer.log 2>&1 &
pids+=("$!")
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true; wait' INT TERM EXIT

echo "starting $WORKERS worker(s) (role $ROLE), $EMBED_WORKERS embed worker(s) and the trainer; logs in var/log/"
$PY -m streaming_rec wait-ready "${ports[@]}" --port "$TRAINER_PORT" --timeout 600
echo
echo "ready: $WORKERS worker(s) on ${SREC_BOOTSTRAP_SERVERS:-$KAFKA_BOOTSTRAP_SERVERS}, health on http://127.0.0.1:$BASE_PORT/health"
echo "ask from another shell:"
echo "  SREC_BOOTSTRAP_SERVERS=$SREC_BOOTSTRAP_SERVERS .venv/bin/streaming-rec ask 'a funny animated film for children' -u alice"
echo
wait -n "${pids[@]}"
echo "a worker exited; stopping the others" >&2
