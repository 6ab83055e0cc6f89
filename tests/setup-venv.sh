#!/usr/bin/env bash
# Creates or refreshes the project-local virtualenv (.venv) from tests/requirements.txt.
# Re-installs only when the requirements change; pyspark is a large download, so say so.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "Setting up the Python environment in $venv (moto, pyspark ~300 MB, pytest): first run only, this takes a few minutes..."
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r tests/requirements.txt
echo "$want" > "$stamp"
