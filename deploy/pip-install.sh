#!/usr/bin/env bash
# pip install with retries: a fresh CI machine downloads torch's CUDA wheels (several
# hundred MB each) and a cut download must not fail the build. pip resumes a cut download
# itself (--resume-retries, pip >= 25.1); a whole attempt that still fails is retried up
# to three times, reusing what pip's download cache already holds. A cut can also be a
# full disk (seen here: every attempt stopped at the same byte with 2 GB free): the free
# space is printed when an attempt fails.
# Usage: deploy/pip-install.sh PYTHON [pip install arguments...]
set -uo pipefail
py=$1; shift
resume=()
if "$py" -m pip install --help 2>/dev/null | grep -q -- '--resume-retries'; then
  resume=(--resume-retries 20)
fi
for attempt in 1 2 3; do
  if "$py" -m pip install -q --retries 10 --timeout 60 "${resume[@]}" "$@"; then
    exit 0
  fi
  echo "pip install: attempt $attempt of 3 failed; free space: $(df -h --output=avail "${TMPDIR:-/tmp}" | tail -1 | tr -d ' ')" >&2
  if [ "$attempt" -lt 3 ]; then
    sleep $((attempt * 10))
  fi
done
echo "pip install: failed after 3 attempts: $*" >&2
exit 1
