"""The local development cluster: a real control plane built from source, kwok GPU nodes and a
process node (`local-0`) that runs pods as host processes.

Entry points are `hack/cluster.py` (up / down / status) and `hack/process_node.py` (the node agent,
started by `cluster.py up`). Nothing here is shipped: it exists for `make demo`, `make test` and benches.
"""
