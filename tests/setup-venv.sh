#!/usr/bin/env bash
# Creates or refreshes the project-local virtualenv (.venv) from tests/requirements.txt.
# Re-installs only when the requirements change. Prints one short line per step and a progress
# line while pip works; pip's own log goes to target/setup-venv.log (named in the messages).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp="$venv/.requirements.sha256"
log=target/setup-venv.log
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

# step N TOTAL TEXT COMMAND...: runs the command with its output in $log, showing the time it
# has taken every few seconds; on failure, the end of the log and where the rest is.
step() {
  local n=$1 total=$2 text=$3
  shift 3
  local started=$SECONDS
  printf '  [%s/%s] %s ' "$n" "$total" "$text"
  "$@" >>"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    kill -0 "$pid" 2>/dev/null && printf '.'
  done
  if wait "$pid"; then
    printf ' done (%ss)\n' "$((SECONDS - started))"
  else
    printf ' FAILED\n'
    tail -20 "$log" >&2
    echo "The whole install log is in $log." >&2
    exit 1
  fi
}

mkdir -p target && : >"$log"
echo "Setting up the Python environment in $venv (moto, pyspark ~300 MB, pytest): first run only, a few minutes."
echo "  (pip's log: $log)"
# An existing virtualenv is kept (it may be a link to another checkout's); only a missing one is created.
if [ -x "$venv/bin/python" ]; then
  echo "  [1/3] create the virtualenv: $venv exists, kept"
else
  step 1 3 "create the virtualenv" python3 -m venv "$venv"
fi
step 2 3 "upgrade pip" "$venv/bin/python" -m pip install --disable-pip-version-check --upgrade pip
step 3 3 "install tests/requirements.txt (pyspark is the large one)" \
  "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r tests/requirements.txt
echo "$want" >"$stamp"
