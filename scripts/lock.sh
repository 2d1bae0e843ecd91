#!/usr/bin/env bash
# `make lock`: pin every dependency, with hashes, from pyproject.toml's ranges.
#   requirements/dev.txt   core + [lab,sandbox,serve] + test tools: make demo, make test, CI
#   requirements/core.txt  core only: the Dockerfile's production image
# uv's resolver (pip-tools' took over 15 minutes on this set; uv takes under a minute) runs
# from a throwaway venv, so it never pins itself into ours; the output is a plain
# requirements file that pip installs with --require-hashes. By default the current pins are
# kept where they still satisfy pyproject.toml; LOCK_UPGRADE=1 moves every pin to the newest
# release the ranges allow.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${LOCK_TOOLS_VENV:-.venv-lock}
if [ ! -x "$tools/bin/uv" ]; then
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install -q --upgrade pip
  "$tools/bin/python" -m pip install -q 'uv>=0.5'
fi
mkdir -p requirements
upgrade=()
[ "${LOCK_UPGRADE:-0}" = 1 ] && upgrade=(--upgrade)
common=(--quiet --python-version 3.11 --generate-hashes --index-url https://pypi.org/simple
        "${upgrade[@]}")
"$tools/bin/uv" pip compile "${common[@]}" --extra dev -o requirements/dev.txt pyproject.toml
"$tools/bin/uv" pip compile "${common[@]}" -o requirements/core.txt pyproject.toml
echo "requirements/dev.txt and requirements/core.txt updated; commit them with pyproject.toml"
