#!/usr/bin/env bash
# Build Ory Hydra from its Go module (see go.mod) once, and cache the binary
# outside the repo, keyed by Hydra's version and a hash of our module files so
# any change to them rebuilds. Prints the binary's path as the last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${HYDRA_MCP_CACHE:-$HOME/.cache/hydra-mcp}"

version="$(awk '$1 == "require" && $2 == "github.com/ory/hydra/v2" { print $3 }' "$here/go.mod")"
[ -n "$version" ] || { echo "hydra/build.sh: cannot find github.com/ory/hydra/v2 in go.mod" >&2; exit 1; }
key="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-12)"
binary="$cache/hydra-$version-$key"

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { echo "hydra/build.sh: Go is required to build Hydra (https://go.dev/dl/)" >&2; exit 1; }
mkdir -p "$cache"
echo "Building Ory Hydra $version from Go modules (first run only, a few minutes)…" >&2
start=$(date +%s)
tmp="$(mktemp "$cache/.hydra-build.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
pkg=github.com/ory/hydra/v2/driver/config
(
  cd "$here"
  # sqlite tags as in Hydra's own builds, so DSN=memory and sqlite files work (cgo).
  CGO_ENABLED=1 go build -trimpath \
    -tags sqlite,sqlite_omit_load_extension \
    -ldflags "-s -w -X $pkg.Version=$version -X $pkg.Commit=module-$key -X $pkg.Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -o "$tmp" .
) >&2
chmod +x "$tmp"
# Rename is atomic: a concurrent build can't leave a half-written binary behind.
mv -f "$tmp" "$binary"
trap - EXIT
echo "Built $binary in $(( $(date +%s) - start ))s" >&2
echo "$binary"
