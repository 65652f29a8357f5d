#!/usr/bin/env bash
# Fails when deadcode finds code the binary never reaches, other than the
# functions scripts/deadcode-allow.txt lists with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
report=$(go tool deadcode ./cmd/...)
# "batch/identity.go:58:6: unreachable func: IdentityOf" → "batch/identity.go IdentityOf"
found=$(printf '%s\n' "$report" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: unreachable func: /\1 /p' | sort -u)
allowed=$({ grep -v '^[[:space:]]*\(#\|$\)' scripts/deadcode-allow.txt || true; } | sort -u)
unexpected=$(comm -23 <(printf '%s\n' "$found") <(printf '%s\n' "$allowed") | sed '/^$/d')
stale=$(comm -13 <(printf '%s\n' "$found") <(printf '%s\n' "$allowed") | sed '/^$/d')
if [ -n "$unexpected" ]; then
  echo "deadcode: code the binary never reaches (delete it, or move what only tests use into a _test.go file):" >&2
  printf '%s\n' "$unexpected" >&2
  exit 1
fi
if [ -n "$stale" ]; then
  echo "deadcode: scripts/deadcode-allow.txt lists code the binary reaches now; remove it:" >&2
  printf '%s\n' "$stale" >&2
  exit 1
fi
echo "deadcode: nothing unexpected"
