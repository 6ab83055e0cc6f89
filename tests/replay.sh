#!/usr/bin/env bash
# Replays sample events through the compiled functions on a local stack and shows what each did
# (events/README.md, "Replaying events"): the response, the job rows' changed fields, the AWS calls.
#   tests/replay.sh EVENT.json [EVENT.json ...] [--function submit|monitor|cleanup|bridge]
#                   [--via auto|runtime-api|cargo-lambda] [--keep]
#   tests/replay.sh --all [--report FILE]      every sample of events/, one line each
# The stack runs inside the replay's own process and stops with it (also on failure or Ctrl-C).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/tests/setup-venv.sh"
"$root/tests/build-functions.sh"
# cargo-lambda, when installed: on the PATH, or where tests/bench.sh or tests/run.sh put it.
export PATH="$PATH:$root/.venv/bin:$root/target/tools/cargo-lambda/bin"
exec "$root/.venv/bin/python" "$root/tests/replay.py" "$@"
