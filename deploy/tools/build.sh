#!/usr/bin/env bash
# Build one Kubernetes tool from its published Go module once, and cache the
# binary outside the repo, exactly as hydra/build.sh does for Hydra: keyed by
# the tool's version and a hash of its wrapper module's files and this script
# (its flags), so any change to them rebuilds. Progress goes to stderr; the
# binary's path is the last line of stdout.
#
#   bash deploy/tools/build.sh <tool>
#
# Tools and the wrapper module (deploy/tools/<dir>/) each is built from:
#   helm                     helm/         helm.sh/helm/v4 cmd/helm
#   kubeconform              kubeconform/  github.com/yannh/kubeconform cmd/kubeconform
#   kube-score               kube-score/   github.com/zegl/kube-score cmd/kube-score
#   kube-apiserver           kubernetes/   k8s.io/kubernetes cmd/kube-apiserver
#   kube-controller-manager  kubernetes/   k8s.io/kubernetes cmd/kube-controller-manager
#   kube-scheduler           kubernetes/   k8s.io/kubernetes cmd/kube-scheduler
#   etcd                     etcd/         go.etcd.io/etcd/server/v3 (main.go calls etcdmain.Main)
#   kwok                     kwok/         sigs.k8s.io/kwok cmd/kwok
#   prometheus               prometheus/   github.com/prometheus/prometheus cmd/prometheus
#   promtool                 prometheus/   github.com/prometheus/prometheus cmd/promtool
#   jaeger                   jaeger/       github.com/jaegertracing/jaeger cmd/jaeger
# kwok simulates nothing without Stage objects; kwokctl feeds it the defaults
# kwok ships in its module (kustomize/stage: node-initialize, node heartbeat
# with lease, pod ready/complete/delete). The build writes those, unmodified,
# beside the binary as <binary>.stages.yaml, for `kwok --config`; the node
# heartbeat stage is the one with a lease, so start kwok as kwokctl does, with
# --node-lease-duration-seconds=40 (kwok then renews each node's Lease).
# A tool whose main package lives in the dependency is a `tool` line of its
# wrapper's go.mod and is built by package path from inside that module, so
# go.mod and go.sum pin every module it links.
#
# Cache dir: $HYDRA_MCP_CACHE (default ~/.cache/hydra-mcp), shared with Hydra
# and Kratos, and so is the build lock: one Go build at a time on the machine.
# Builds run under `nice -n 19`. A cache hit needs no Go.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${HYDRA_MCP_CACHE:-$HOME/.cache/hydra-mcp}"
tool="${1:-}"

# dir: wrapper module; module: the upstream module whose version names the
# binary; pkg: what `go build` builds, from inside the wrapper.
case "$tool" in
  helm) dir=helm module=helm.sh/helm/v4 pkg=helm.sh/helm/v4/cmd/helm ;;
  kubeconform) dir=kubeconform module=github.com/yannh/kubeconform pkg=$module/cmd/kubeconform ;;
  kube-score) dir=kube-score module=github.com/zegl/kube-score pkg=$module/cmd/kube-score ;;
  kube-apiserver | kube-controller-manager | kube-scheduler)
    dir=kubernetes module=k8s.io/kubernetes pkg=$module/cmd/$tool ;;
  etcd) dir=etcd module=go.etcd.io/etcd/server/v3 pkg=. ;;
  kwok) dir=kwok module=sigs.k8s.io/kwok pkg=$module/cmd/kwok ;;
  prometheus | promtool) dir=prometheus module=github.com/prometheus/prometheus pkg=$module/cmd/$tool ;;
  jaeger) dir=jaeger module=github.com/jaegertracing/jaeger pkg=$module/cmd/jaeger ;;
  *)
    echo "usage: deploy/tools/build.sh <tool>" >&2
    echo "tools: helm kubeconform kube-score kube-apiserver kube-controller-manager kube-scheduler etcd kwok prometheus promtool jaeger" >&2
    exit 2 ;;
esac
mod="$here/$dir"

# The version lives in go.mod only (the require line); no Go needed for a
# cache hit.
version="$(awk -v m="$module" '{ for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit } }' "$mod/go.mod")"
[ -n "$version" ] || { echo "deploy/tools/build.sh: cannot find $module in deploy/tools/$dir/go.mod" >&2; exit 1; }
files=("$mod/go.mod" "$mod/go.sum")
[ -f "$mod/main.go" ] && files+=("$mod/main.go")
key="$(cat "${files[@]}" "$here/build.sh" | sha256sum | cut -c1-12)"
binary="$cache/$tool-$version-$key"

# kwok's stages file is written before its binary, so the binary implies it.
if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { echo "deploy/tools/build.sh: Go is required to build $tool (https://go.dev/dl/)" >&2; exit 1; }
mkdir -p "$cache"

# One build at a time (Hydra's and Kratos's too): a second caller waits here,
# then finds the binary.
if command -v flock >/dev/null; then
  exec 9>"$cache/.build.lock"
  flock 9
  if [ -x "$binary" ]; then echo "$binary"; exit 0; fi
fi

echo "Building $tool $version from Go modules (first run only; kube-apiserver takes ~10 min on 2 cores)…" >&2
start=$(date +%s)
tmp="$(mktemp "$cache/.$tool-build.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
cd "$mod"
go mod download "$module" >&2
# Stamp the upstream commit if the module proxy recorded one for this tag,
# falling back to our module hash (as hydra/build.sh does).
info="$(go env GOMODCACHE)/cache/download/$module/@v/$version.info"
commit="$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "$info" 2>/dev/null || true)"
commit="${commit:-module-$key}"
date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# The same stamps and tags as each project's own release build.
tags=""
ldflags="-s -w"
case "$tool" in
  helm)
    v=helm.sh/helm/v4/internal/version
    ldflags+=" -X $v.version=$version -X $v.gitCommit=$commit -X $v.gitTreeState=clean" ;;
  kubeconform)
    ldflags+=" -X main.version=$version" ;;
  kube-score)
    ldflags+=" -X main.version=${version#v} -X main.commit=$commit -X main.date=$date" ;;
  kube-*)
    # hack/lib/version.sh: both version packages; charts' semverCompare on
    # .Capabilities.KubeVersion needs a real gitVersion.
    minor="${version#v*.}"
    minor="${minor%%.*}"
    major="${version#v}"
    major="${major%%.*}"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=$major -X $p.gitMinor=$minor"
      ldflags+=" -X $p.gitCommit=$commit -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    # hack/lib/golang.sh, non-debug build.
    tags="selinux,notest,grpcnotrace" ;;
  etcd)
    ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=$commit" ;;
  kwok)
    ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=$version" ;;
  prometheus | promtool)
    # .promu.yml; without `builtinassets` (the web UI is built by npm, not in
    # the module): the API, rules and alerts are all there.
    v=github.com/prometheus/common/version
    ldflags+=" -X $v.Version=${version#v} -X $v.Revision=$commit -X $v.Branch=HEAD -X $v.BuildUser=hydra-mcp -X $v.BuildDate=$date"
    tags="netgo" ;;
  jaeger)
    v=github.com/jaegertracing/jaeger/internal/version
    ldflags+=" -X $v.commitSHA=$commit -X $v.latestVersion=$version -X $v.date=$date" ;;
esac

# Static, as all of these are released (no gcc needed). nice: the tests of
# whoever else is on this machine keep their cores.
CGO_ENABLED=0 nice -n 19 go build -trimpath -mod=readonly -buildvcs=false \
  -tags "$tags" -ldflags "$ldflags" -o "$tmp" "$pkg" >&2
chmod 755 "$tmp"
if [ "$tool" = kwok ]; then
  stage="$(go list -m -f '{{.Dir}}' "$module")/kustomize/stage"
  stmp="$(mktemp "$cache/.$tool-stages.XXXXXX")"
  trap 'rm -f "$tmp" "$stmp"' EXIT
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"
    cat "$stage/$f"
  done > "$stmp"
  chmod 644 "$stmp"
  mv -f "$stmp" "$binary.stages.yaml"
fi
# rename(2) is atomic: nobody ever sees a half-written binary.
mv -f "$tmp" "$binary"
trap - EXIT
echo "Built $binary in $(( $(date +%s) - start ))s" >&2
echo "$binary"
