#!/usr/bin/env bash
# Build Ory Kratos from its Go module (see go.mod) once, and cache the binary
# outside the repo, keyed by Kratos's version and a hash of our module files
# and this script (its flags), so any change to them rebuilds. Progress goes
# to stderr; the binary's path is the last line of stdout. Mirrors
# hydra/build.sh and shares its cache and lock.
# Cache dir: $HYDRA_MCP_CACHE (default ~/.cache/hydra-mcp).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${HYDRA_MCP_CACHE:-$HOME/.cache/hydra-mcp}"
module=github.com/ory/kratos

# The version lives in go.mod only (single-line or block `require`); no Go
# needed for a cache hit.
version="$(awk -v m="$module" '{ for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit } }' "$here/go.mod")"
[ -n "$version" ] || { echo "kratos/build.sh: cannot find $module in kratos/go.mod" >&2; exit 1; }
key="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" "$here/build.sh" | sha256sum | cut -c1-12)"
binary="$cache/kratos-$version-$key"

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { echo "kratos/build.sh: Go is required to build Kratos (https://go.dev/dl/)" >&2; exit 1; }
mkdir -p "$cache"

# One build at a time (Hydra's and Kratos's builds share the lock: on two
# cores, two concurrent cgo builds only slow each other down). A second
# caller waits here, then finds the binary.
if command -v flock >/dev/null; then
  exec 9>"$cache/.build.lock"
  flock 9
  if [ -x "$binary" ]; then echo "$binary"; exit 0; fi
fi

echo "Building Ory Kratos $version from Go modules (first run only, several minutes)…" >&2
start=$(date +%s)
tmp="$(mktemp "$cache/.kratos-build.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
cd "$here"
go mod download "$module" >&2
# Stamp the upstream commit the module proxy recorded for this tag, as
# Kratos's release builds do (.goreleaser.yml buildinfo_*: driver/config
# Version, Commit, Date), falling back to our module hash.
info="$(go env GOMODCACHE)/cache/download/$module/@v/$version.info"
commit="$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "$info" 2>/dev/null || true)"
pkg=$module/driver/config
# sqlite tags (cgo) so DSN=memory and SQLite files work; load_extension left
# out as in our Hydra build. CGO_CPPFLAGS as in Kratos's Dockerfile-build:
# SQLite files it creates are private to their owner.
CGO_ENABLED=1 CGO_CPPFLAGS="${CGO_CPPFLAGS:-} -DSQLITE_DEFAULT_FILE_PERMISSIONS=0600" go build -trimpath \
  -tags sqlite,sqlite_omit_load_extension \
  -ldflags "-s -w -X $pkg.Version=$version -X $pkg.Commit=${commit:-module-$key} -X $pkg.Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -o "$tmp" . >&2
chmod 755 "$tmp"
# rename(2) is atomic: nobody ever sees a half-written binary.
mv -f "$tmp" "$binary"
trap - EXIT
echo "Built $binary in $(( $(date +%s) - start ))s" >&2
echo "$binary"
