"""The process node: a small kubelet stand-in that runs a pod's containers as host processes.

It ignores images (the host's Python environment stands in for the trainer image) and exists only
for development and tests; see hack/README.md for what it does and does not do.
"""
