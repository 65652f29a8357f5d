#!/usr/bin/env bash
# Builds the userbatch image (Dockerfile) with podman, pulling no image, and
# checks it: a non-root user, the binary as entrypoint, nothing in it but the
# binary and the CA certificates, and that binary runs.
#   bash scripts/image.sh [TAG]      (default userbatch:latest)
# PODMAN_FLAGS is added to every podman command: podman in a container may
# need "--storage-driver vfs" (no overlay) or "--cgroup-manager cgroupfs".
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
tag="${1:-userbatch:latest}"
certs=/etc/ssl/certs/ca-certificates.crt
read -r -a flags <<<"${PODMAN_FLAGS:-}"
pod() { podman "${flags[@]}" "$@"; }

stage="$(mktemp -d)"
cid=""
cleanup() {
  [ -z "$cid" ] || pod rm -f "$cid" >/dev/null
  rm -rf "$stage"
}
trap cleanup EXIT

[ -r "$certs" ] || { echo "image.sh: $certs is missing (apt-get install ca-certificates)" >&2; exit 1; }
version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$stage/userbatch" ./cmd/userbatch
cp "$certs" "$stage/ca-certificates.crt"
pod build --quiet --pull=never -f Dockerfile -t "$tag" "$stage" >/dev/null

fail() { echo "image.sh: $tag: $*" >&2; exit 1; }
user="$(pod image inspect --format '{{.Config.User}}' "$tag")"
case "${user%%:*}" in
  "" | 0 | root) fail "runs as root (USER ${user:-unset})" ;;
esac
entry="$(pod image inspect --format '{{json .Config.Entrypoint}}' "$tag")"
[ "$entry" = '["/userbatch"]' ] || fail "entrypoint is $entry, want [\"/userbatch\"]"
cid="$(pod create "$tag")"
pod export -o "$stage/export.tar" "$cid"
files="$(tar -tf "$stage/export.tar" | grep -v '/$' | sort | tr '\n' ' ')"
[ "$files" = "etc/ssl/certs/ca-certificates.crt userbatch " ] || fail "holds more than the binary and the certificates: $files"
# The image's own binary runs: static, so the host runs it as the image would
# (running a container needs cgroups and rlimits a sandboxed CI may not give).
mkdir "$stage/out"
tar -xf "$stage/export.tar" -C "$stage/out" userbatch
out="$("$stage/out/userbatch" --version)"
case "$out" in
  *"$version"*) ;;
  *) fail "the image's binary does not run: --version said: $out" ;;
esac
echo "image $tag: user $user, entrypoint $entry, files: $files"
