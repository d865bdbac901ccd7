"""The local development cluster: a real control plane built from source, a real node (`node-0`: kubelet,
containerd, runc, kube-proxy, CoreDNS) and kwok GPU nodes for scale.

Entry points are `hack/cluster.py` (up / down / status), `hack/images.py` (our images, built into the
node) and `hack/local_path_provisioner.py` (started by `cluster.py up`). Nothing here is shipped: it
exists for `make demo`, `make test` and benches.
"""
