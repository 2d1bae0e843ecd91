#!/usr/bin/env bash
# Open JupyterLab on the runbooks (notebooks/), on 127.0.0.1, with the local sandbox's
# environment loaded so "Run All" works against it after editing only the parameters cell.
#
#   scripts/lab.sh                 sandbox up (idempotent) + its env, JupyterLab on notebooks/
#   OPSLIB_LAB_SANDBOX=0 scripts/lab.sh   no sandbox: your own AWS profile / KUBECONFIG / PG* env
#   OPSLIB_LAB_PORT=8890 scripts/lab.sh   another port (default 8888, next free one if taken)
#   scripts/lab.sh --ServerApp.token=... extra arguments go to `jupyter lab`
#
# Interactive captures (opslib.capture_evidence()) write to $OPSLIB_EVIDENCE_DIR, set here to
# ./evidence like `opslib run`. Stop with Ctrl+C; the sandbox keeps running (make sandbox-down).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"

if [ "${OPSLIB_LAB_SANDBOX:-1}" != "0" ]; then
    echo "starting the sandbox (AWS API, PostgreSQL, Kubernetes API on 127.0.0.1)..." >&2
    # env_vars() as export lines; the same variables `opslib sandbox env` prints
    sandbox_env="$("$py" -c 'import opslib.sandbox as s; print(s.format_env(s.up()))')"
    eval "$sandbox_env"
    echo "sandbox env loaded: AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL PGHOST=$PGHOST PGPORT=$PGPORT KUBECONFIG=$KUBECONFIG" >&2
fi
export OPSLIB_EVIDENCE_DIR="${OPSLIB_EVIDENCE_DIR:-$repo/evidence}"
unset OPSLIB_HEADLESS  # a JupyterLab kernel is interactive: approval buttons, widgets
mkdir -p "$OPSLIB_EVIDENCE_DIR"

root_flag=()
[ "$(id -u)" = "0" ] && root_flag=(--allow-root)
exec "$py" -m jupyterlab \
    --ip=127.0.0.1 \
    --port="${OPSLIB_LAB_PORT:-8888}" \
    --no-browser \
    --ServerApp.root_dir="$repo/notebooks" \
    "${root_flag[@]}" \
    "$@"
