#!/usr/bin/env bash
# Build the local cluster's binaries (control plane, node, kwok, helm, CoreDNS) from pinned sources through the Go module proxy.
# Output: ${SEQMODEL_K8S_CACHE}/bin (default ${XDG_CACHE_HOME:-$HOME/.cache}/seqmodel/k8s/<versions>/bin).
# Each binary is skipped when already present, so a warm run takes a second.
set -euo pipefail


here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.sh
source "$here/versions.sh"
bin="$SEQMODEL_K8S_BIN"
work="$SEQMODEL_K8S_CACHE/src"
mkdir -p "$bin" "$work"

fail() { echo "build-binaries: $*" >&2; exit 1; }
command -v go >/dev/null || fail "'go' not found on PATH: install Go (each pinned module's minimum is checked next)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[build-binaries %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
have() { [ -x "$bin/$1" ]; }

# Before any download: the module must be reachable through the proxy, and its `go` line must not be newer
# than this Go (GOTOOLCHAIN=local forbids fetching a toolchain, and go's own error comes minutes later).
require_module() {
  local need have_go
  need="$(cd "$work" && go list -m -f '{{.GoVersion}}' "$1" 2>&1)" \
    || fail "cannot fetch $1 through the Go module proxy (GOPROXY=$(go env GOPROXY)): ${need##*$'\n'}"
  have_go="$(go env GOVERSION)"
  have_go="${have_go#go}"
  [ -z "$need" ] || printf '%s\n%s\n' "$need" "${have_go%%[-+ ]*}" | sort -V -C \
    || fail "$1 needs Go >= $need but 'go' on PATH is go$have_go; install a newer Go"
}

# `go install` into the cache: via a temporary GOBIN, so an interrupted copy never looks like a built binary.
install_go() {  # <binary name> <ldflags> <package@version>
  local tmp="$work/gobin"
  rm -rf "$tmp"
  GOBIN="$tmp" go install -trimpath -ldflags "$2" "$3"
  mv "$tmp/$1" "$bin/$1"
}

k8s_minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
k8s_patch="$(echo "$K8S_VERSION" | cut -d. -f3)"
staging_version="v0.${k8s_minor}.${k8s_patch}"

build_kubernetes() {
  local need=()
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do have "$b" || need+=("$b"); done
  [ ${#need[@]} -eq 0 ] && { log "kubernetes $K8S_VERSION: present"; return; }
  local mod="$work/kubernetes"
  require_module "k8s.io/kubernetes@$K8S_VERSION"
  mkdir -p "$mod" && cd "$mod"
  log "kubernetes $K8S_VERSION: resolving staging modules"
  # k8s.io/kubernetes replaces its staging modules with local paths, which `go install` refuses;
  # a throwaway main module pins each of them to the matching published v0.x release instead.
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')" \
    || fail "cannot download k8s.io/kubernetes@$K8S_VERSION through the Go module proxy"
  {
    echo "module seqmodel.local/k8sbuild"
    echo "go 1.24"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" \
      | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > go.mod
  printf 'package k8sbuild\n' > doc.go
  local pkgs=()
  for b in "${need[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  log "kubernetes $K8S_VERSION: downloading modules"
  go get "${pkgs[@]/%/@$K8S_VERSION}"
  local ld=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
  done
  for b in "${need[@]}"; do
    log "kubernetes $K8S_VERSION: building $b (several minutes on 2 cores)"
    go build -trimpath -ldflags "-s -w $ld" -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b"
    mv "$bin/$b.tmp" "$bin/$b"
  done
}

build_etcd() {
  have etcd && { log "etcd $ETCD_VERSION: present"; return; }
  require_module "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  local mod="$work/etcd"
  mkdir -p "$mod" && cd "$mod"
  # etcd's server module also replaces its siblings with local paths: same wrapper approach.
  printf 'module seqmodel.local/etcdbuild\ngo 1.24\n' > go.mod
  printf 'package etcdbuild\n' > doc.go
  log "etcd $ETCD_VERSION: downloading modules"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  log "etcd $ETCD_VERSION: building"
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$bin/etcd.tmp" "$bin/etcd"
}

build_kwok() {
  have kwok && { log "kwok $KWOK_VERSION: present"; return; }
  require_module "sigs.k8s.io/kwok@$KWOK_VERSION"
  log "kwok $KWOK_VERSION: building"
  install_go kwok "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_coredns() {
  have coredns && { log "coredns $COREDNS_VERSION: present"; return; }
  require_module "github.com/coredns/coredns@$COREDNS_VERSION"
  log "coredns $COREDNS_VERSION: building"
  install_go coredns "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
}

# The sandbox ("pause") container's binary: no registry here, so the node's pause image is built from it.
build_pause() {
  have pause && { log "pause: present"; return; }
  command -v gcc >/dev/null || fail "'gcc' not found: run hack/install-system-deps.sh"
  log "pause: building"
  gcc -Os -static -o "$bin/pause.tmp" "$here/node/pause.c" || fail "gcc -static failed: is libc6-dev installed?"
  mv "$bin/pause.tmp" "$bin/pause"
}

build_helm() {
  have helm && { log "helm $HELM_VERSION: present"; return; }
  require_module "helm.sh/helm/v3@$HELM_VERSION"
  log "helm $HELM_VERSION: building"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
  ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  install_go helm "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

start=$(date +%s)
build_etcd
build_kubernetes
build_kwok
build_helm
build_coredns
build_pause
log "all binaries in $bin ($(( $(date +%s) - start )) s)"
