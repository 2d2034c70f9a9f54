#!/usr/bin/env bash
# A throwaway OCI registry (CNCF distribution, Debian's docker-registry) on 127.0.0.1:5000 for
# trying wasmkube by hand: no auth, storage in a temp dir, in the foreground until Ctrl-C.
# (Debian's own /etc/docker/registry/config.yml turns on htpasswd auth, so it is not used.)
#
#   scripts/local-registry.sh [ADDR]        default 127.0.0.1:5000
set -euo pipefail
addr="${1:-127.0.0.1:5000}"
if ! command -v docker-registry >/dev/null; then
    apt-cache show docker-registry >/dev/null 2>&1 || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $addr
YAML
echo "registry on http://$addr (storage $dir/storage); Ctrl-C stops it" >&2
docker-registry serve "$dir/config.yml"
