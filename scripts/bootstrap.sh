#!/usr/bin/env bash
# Sets up everything `make demo` and `make test` need on a fresh machine, idempotently:
#   - PostgreSQL server binaries (initdb, pg_ctl) via apt-get when missing;
#   - Debian's Chromium for the browser tests when OPSLIB_WITH_BROWSER=1 and it is missing;
#   - kubectl (Debian's kubernetes-client; a newer kubectl already on PATH is kept) and
#     Alertmanager (prometheus-alertmanager) for the tests, when OPSLIB_WITH_TEST_TOOLS=1;
#   - a venv in .venv with opslib and its dev extras installed (re-installed when pyproject changes).
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
stamp=.venv/.opslib-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing opslib and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
