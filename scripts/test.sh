#!/usr/bin/env bash
# Install everything and run every check: ruff, mypy (strict), import contracts, then pytest on
# SQLite and on PostgreSQL (with Redis and headless Chromium). Installs Chromium, PostgreSQL and
# Redis from Debian's packages when missing, and starts PostgreSQL and Redis when not running.
# Exits non-zero if any step failed; every step runs regardless, so one run shows everything.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh" || exit 1
cd "$ROOT"

PG_URL="${TSUNAGU_TEST_POSTGRES_URL:-postgres://tsunagu:tsunagu-test-only@127.0.0.1:5432/postgres}"
export TSUNAGU_TEST_POSTGRES_URL="$PG_URL"
export TSUNAGU_TEST_REDIS_URL="${TSUNAGU_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql; fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    for version in $(ls /etc/postgresql); do
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  # The test role may create (and drop) its own databases; nothing else.
  as_root su postgres -c "psql -q -v ON_ERROR_STOP=1" <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tsunagu') THEN
    CREATE ROLE tsunagu LOGIN CREATEDB PASSWORD 'tsunagu-test-only';
  END IF;
END $$;
SQL
}

ensure_redis() {
  if ! command -v redis-server >/dev/null; then apt_install redis-server; fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
}

failed=()
step() {
  local name="$1"; shift
  echo
  echo "==> $name"
  if ! "$@"; then failed+=("$name"); fi
}

step "Chromium (browser tests)" apt_install chromium
# The browser's questionnaire evaluator runs the shared vectors under Node's own test runner.
command -v node >/dev/null || step "Node.js (evaluator tests)" apt_install nodejs
step "PostgreSQL" ensure_postgres
step "Redis" ensure_redis
step "ruff check" ruff check .
step "ruff format" ruff format --check .
step "mypy --strict" mypy
step "import contracts" lint-imports --no-cache
step "pytest (SQLite)" env TSUNAGU_TEST_DATABASE=sqlite pytest -p no:cacheprovider "$@"
# Its own Redis database, so the two runs never share queues or rate-limit keys.
step "pytest (PostgreSQL)" env TSUNAGU_TEST_DATABASE=postgres \
  TSUNAGU_TEST_REDIS_URL="${TSUNAGU_TEST_REDIS_URL%/*}/14" pytest -p no:cacheprovider "$@"

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all checks passed"
