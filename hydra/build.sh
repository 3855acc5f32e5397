#!/usr/bin/env bash
# Build Ory Hydra from its Go module (see go.mod) once, and cache the binary
# outside the repo, keyed by Hydra's version and a hash of our module files and
# this script (its flags), so any change to them rebuilds. Progress goes to
# stderr; the binary's path is the last line of stdout.
# Cache dir: $HYDRA_MCP_CACHE (default ~/.cache/hydra-mcp).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${HYDRA_MCP_CACHE:-$HOME/.cache/hydra-mcp}"
module=github.com/ory/hydra/v2

# The version lives in go.mod only (single-line or block `require`); no Go
# needed for a cache hit.
version="$(awk -v m="$module" '{ for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit } }' "$here/go.mod")"
[ -n "$version" ] || { echo "hydra/build.sh: cannot find $module in hydra/go.mod" >&2; exit 1; }
key="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" "$here/build.sh" | sha256sum | cut -c1-12)"
binary="$cache/hydra-$version-$key"

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { echo "hydra/build.sh: Go is required to build Hydra (https://go.dev/dl/)" >&2; exit 1; }
mkdir -p "$cache"

# One build at a time: a second caller waits here, then finds the binary.
if command -v flock >/dev/null; then
  exec 9>"$cache/.build.lock"
  flock 9
  if [ -x "$binary" ]; then echo "$binary"; exit 0; fi
fi

echo "Building Ory Hydra $version from Go modules (first run only, a few minutes)…" >&2
start=$(date +%s)
tmp="$(mktemp "$cache/.hydra-build.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
cd "$here"
go mod download "$module" >&2
# Stamp the upstream commit the module proxy recorded for this tag (as
# Hydra's release builds do), falling back to our module hash.
info="$(go env GOMODCACHE)/cache/download/$module/@v/$version.info"
commit="$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "$info" 2>/dev/null || true)"
pkg=$module/driver/config
# sqlite tags as in Hydra's own builds, so DSN=memory and SQLite files work (cgo).
CGO_ENABLED=1 go build -trimpath \
  -tags sqlite,sqlite_omit_load_extension \
  -ldflags "-s -w -X $pkg.Version=$version -X $pkg.Commit=${commit:-module-$key} -X $pkg.Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -o "$tmp" . >&2
chmod 755 "$tmp"
# rename(2) is atomic: nobody ever sees a half-written binary.
mv -f "$tmp" "$binary"
trap - EXIT
echo "Built $binary in $(( $(date +%s) - start ))s" >&2
echo "$binary"
