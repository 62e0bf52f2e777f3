#!/usr/bin/env bash
# pip install with retries: a fresh CI machine downloads torch's CUDA wheels (several
# hundred MB each) and a dropped connection must not fail the build. pip resumes a cut
# download itself (--resume-retries, pip >= 25.1); a whole attempt that still fails is
# retried up to three times, reusing what pip's download cache already holds.
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
  echo "pip install: attempt $attempt of 3 failed; retrying in $((attempt * 10)) s" >&2
  sleep $((attempt * 10))
done
echo "pip install: failed after 3 attempts: $*" >&2
exit 1
