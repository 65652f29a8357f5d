#!/usr/bin/env bash
# Installs and starts what the tests need beyond Go: PostgreSQL (the ledger's
# conformance suite), Chromium's headless shell (report.html rendered
# headless: the browser's engine, on less than half its CPU), tmux (the
# live display and the confirmation, in a real terminal) and podman (the
# container image, built and checked by scripts/image.sh), from Debian's
# packages. Prints the variables the tests read; .ci/run evals them.
set -euo pipefail
need=()
command -v chromium-headless-shell >/dev/null 2>&1 || need+=(chromium-headless-shell)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v podman >/dev/null 2>&1 || need+=(podman)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
pg_ctlcluster 15 main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q" && break
  sleep 1 # waiting for a server process we started, outside any test
done
su postgres -c "psql -qtc \"SELECT 1 FROM pg_roles WHERE rolname='userbatch'\" | grep -q 1 || psql -qc \"CREATE ROLE userbatch LOGIN PASSWORD 'userbatch' CREATEDB\"" >&2
su postgres -c "psql -qtc \"SELECT 1 FROM pg_database WHERE datname='userbatch_test'\" | grep -q 1 || createdb -O userbatch userbatch_test" >&2
echo "export USERBATCH_TEST_POSTGRES='postgres://userbatch:userbatch@127.0.0.1:5432/userbatch_test?sslmode=disable'"
echo "export USERBATCH_TEST_CHROMIUM='$(command -v chromium-headless-shell)'"
