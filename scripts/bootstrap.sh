#!/usr/bin/env bash
# Sets up everything `make demo` and `make test` need on a fresh machine, idempotently:
#   - PostgreSQL server binaries (initdb, pg_ctl) via apt-get when missing;
#   - Debian's Chromium for the browser tests when OPSLIB_WITH_BROWSER=1 and it is missing;
#   - kubectl (Debian's kubernetes-client; a newer kubectl already on PATH is kept) and
#     Alertmanager (prometheus-alertmanager) for the tests, when OPSLIB_WITH_TEST_TOOLS=1;
#   - a venv in .venv with the locked dev dependencies and opslib (re-installed when pyproject.toml or
#     the lock changes).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    log "apt-get not available: install $* with your package manager (or use environment.yml with conda)"
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_pg_server() {
  command -v pg_ctl >/dev/null && command -v initdb >/dev/null && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
  command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ] && return 0
  return 1
}

if ! have_pg_server; then
  log "PostgreSQL server binaries missing: installing postgresql + contrib"
  apt_install postgresql postgresql-contrib
  # Debian starts a cluster of its own on install; the sandbox runs its own clusters.
  as_root service postgresql stop >/dev/null 2>&1 || true
fi

if [ "${OPSLIB_WITH_BROWSER:-0}" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  log "Chromium missing: installing Debian's chromium for the browser tests"
  apt_install chromium fonts-dejavu-core
fi

if [ "${OPSLIB_WITH_TEST_TOOLS:-0}" = 1 ]; then
  if ! command -v kubectl >/dev/null; then
    log "kubectl missing: installing Debian's kubernetes-client (the tests check the sandbox with it)"
    apt_install kubernetes-client
  fi
  if ! command -v prometheus-alertmanager >/dev/null && ! command -v alertmanager >/dev/null; then
    log "Alertmanager missing: installing Debian's prometheus-alertmanager for the alert tests"
    apt_install prometheus-alertmanager
    # the package starts a service of its own; the tests run their own Alertmanager
    as_root service prometheus-alertmanager stop >/dev/null 2>&1 || true
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
# The venv installs the lock (requirements/dev.txt: exact versions with hashes, made by
# `make lock` from pyproject.toml's ranges), then opslib itself without dependencies: a fresh
# machine gets the set the tests passed with, not whatever was released that morning.
stamp=.venv/.opslib-installed
want=$(cat pyproject.toml requirements/dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing the locked dependencies (requirements/dev.txt) and opslib into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q --require-hashes -r requirements/dev.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi

# Airflow for the operator's test (tests/unit/test_airflow.py): its own venv, because Airflow
# pins much of its world (its versions would fight the dev set's); made once, test runs only.
AIRFLOW_VERSION=3.3.2
if [ "${OPSLIB_WITH_TEST_TOOLS:-0}" = 1 ]; then
  airflow_venv=${OPSLIB_AIRFLOW_VENV:-.venv-airflow}
  if [ ! -x "$airflow_venv/bin/airflow" ] || [ "$(cat "$airflow_venv/.version" 2>/dev/null)" != "$AIRFLOW_VERSION" ]; then
    log "creating $airflow_venv with apache-airflow $AIRFLOW_VERSION for the Airflow operator test"
    "$PY" -m venv "$airflow_venv"
    "$airflow_venv/bin/python" -m pip install -q --upgrade pip
    "$airflow_venv/bin/python" -m pip install -q "apache-airflow==$AIRFLOW_VERSION"
    echo "$AIRFLOW_VERSION" > "$airflow_venv/.version"
  fi
fi
