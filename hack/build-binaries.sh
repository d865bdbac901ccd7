#!/usr/bin/env bash
# Build the local cluster's binaries from pinned sources through the Go module proxy.
# Output: ${SEQMODEL_K8S_CACHE}/bin (default ${XDG_CACHE_HOME:-$HOME/.cache}/seqmodel/k8s/<versions>/bin).
# Each binary is skipped when already present, so a warm run takes a second.
set -euo pipefail


here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.sh
source "$here/versions.sh"
bin="$SEQMODEL_K8S_BIN"
work="$SEQMODEL_K8S_CACHE/src"
mkdir -p "$bin" "$work"

command -v go >/dev/null || { echo "build-binaries: 'go' not found on PATH; install Go >= 1.24" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[build-binaries %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
have() { [ -x "$bin/$1" ]; }

k8s_minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
k8s_patch="$(echo "$K8S_VERSION" | cut -d. -f3)"
staging_version="v0.${k8s_minor}.${k8s_patch}"

build_kubernetes() {
  local need=()
  for b in kube-apiserver kube-controller-manager kube-scheduler; do have "$b" || need+=("$b"); done
  [ ${#need[@]} -eq 0 ] && { log "kubernetes $K8S_VERSION: present"; return; }
  local mod="$work/kubernetes"
  mkdir -p "$mod" && cd "$mod"
  log "kubernetes $K8S_VERSION: resolving staging modules"
  # k8s.io/kubernetes replaces its staging modules with local paths, which `go install` refuses;
  # a throwaway main module pins each of them to the matching published v0.x release instead.
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')" \
    || { echo "build-binaries: cannot reach the Go module proxy for k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
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
  log "kwok $KWOK_VERSION: building"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_helm() {
  have helm && { log "helm $HELM_VERSION: present"; return; }
  log "helm $HELM_VERSION: building"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
  ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  GOBIN="$bin" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

start=$(date +%s)
build_etcd
build_kubernetes
build_kwok
build_helm
log "all binaries in $bin ($(( $(date +%s) - start )) s)"
