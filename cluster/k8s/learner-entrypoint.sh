#!/usr/bin/env bash
# The learner container's entry point: `tether learner` in RUN_DIR, resuming when a checkpoint is there.
# usage: RUN_DIR=/var/lib/tether/runs/NAME learner-entrypoint.sh [tether learner options…]
set -euo pipefail
if [[ -z "${RUN_DIR:-}" ]]; then
  echo "learner-entrypoint.sh: set RUN_DIR to the run directory (on the persistent volume)" >&2
  exit 2
fi
tether="${TETHER:-tether}"
if [[ -f "$RUN_DIR/checkpoints/latest" ]]; then
  echo "learner-entrypoint.sh: resuming $RUN_DIR from $(cat "$RUN_DIR/checkpoints/latest")" >&2
  exec "$tether" learner --out "$RUN_DIR" --resume "$@"
fi
echo "learner-entrypoint.sh: starting a new run in $RUN_DIR" >&2
exec "$tether" learner --out "$RUN_DIR" "$@"
