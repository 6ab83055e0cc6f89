# Shared by tests/infra/check.sh and tests/infra/sam-build.sh (sourced): one PASS or FAIL line per check, quiet
# commands, and pinned tool virtualenvs.
say() { printf '%s\n' "$*"; }
pass() { say "PASS  $1${2:+ ($2)}"; }
fail() { say "FAIL  $1${2:+: $2}"; failed=$((failed + 1)); }
elapsed() { printf '%ss' "$(($(date +%s) - $1))"; }
# Runs a command quietly; its output is shown only if it fails.
quiet() {
  local log
  log=$(mktemp)
  if "$@" >"$log" 2>&1; then rm -f "$log"; return 0; fi
  cat "$log"; rm -f "$log"; return 1
}
# wait_for PID SECONDS: true once PID (a child of this shell) has ended, false if it still runs after SECONDS.
wait_for() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 1
  done
}
# pinned_venv DIR REQUIREMENTS CONSTRAINTS WHAT: (re)creates the virtualenv DIR from the pinned files whenever they
# change (their hash is kept in DIR/.pins.sha256); fails, naming WHAT, if pip does.
pinned_venv() {
  local venv=$1 requirements=$2 constraints=$3 what=$4 want
  want=$(cat "$requirements" "$constraints" | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.pins.sha256" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "Installing $what into ${venv#"$PWD/"} ..."
  quiet python3 -m venv "$venv" \
    && quiet "$venv/bin/python" -m pip install --disable-pip-version-check --upgrade pip \
    && quiet "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
      -r "$requirements" -c "$constraints" \
    && echo "$want" >"$venv/.pins.sha256"
}
