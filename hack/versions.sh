# Pinned versions of the local cluster's binaries and where they are cached; sourced by hack/*.sh.
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"
HELM_VERSION="${HELM_VERSION:-v3.19.5}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"
SEQMODEL_K8S_CACHE="${SEQMODEL_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seqmodel/k8s/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_coredns-${COREDNS_VERSION}}"
SEQMODEL_K8S_BIN="$SEQMODEL_K8S_CACHE/bin"
