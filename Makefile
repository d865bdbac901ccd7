# seqmodel: `make demo` runs the main job on Kubernetes (the local cluster, the images, the operator by Helm,
# kubectl apply of manifests/examples/), `make test` runs every test. Both set themselves up (as root).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system-deps binaries images demo test test-unit test-e2e bench cluster-up cluster-down cluster-purge cluster-status data manifests clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,operator,client,dev]'
	touch $@

# Debian packages of the real node and the image builds (containerd, runc, CNI plugins, iptables, buildah,
# debootstrap, a static libc): apt-get, once; a no-op when they are installed.
system-deps:
	bash hack/install-system-deps.sh

# Control-plane, node, etcd, kwok, helm and CoreDNS binaries, built from source into a cache outside the repo.
binaries: system-deps
	bash hack/build-binaries.sh

# The trainer and operator images from docker/*.Dockerfile, built with buildah on local Debian bases (no
# registry is reachable here) and cached under ~/.cache/seqmodel/images; prints name=ref per image.
# The first build takes several minutes (the torch base is 6 GB); a warm one takes seconds.
images: setup system-deps
	$(PY) hack/images.py build

# The local cluster (left running), the images (built and imported into node-0), the CRDs, the operator
# installed by Helm in the cluster, then the example pretraining job and predictions from its checkpoint
# (about 1.5 minutes warm on 2 cores; the first run builds everything). Without Kubernetes:
# bash examples/local_pipeline.sh
demo: setup binaries
	bash examples/demo.sh

test: setup binaries images
	$(PY) -m pytest tests

test-unit: setup binaries  # the chart's tests run the helm built here
	$(PY) -m pytest tests -m "not e2e"

test-e2e: setup binaries images
	$(PY) -m pytest tests -m e2e

bench: setup
	$(PY) -m bench

cluster-up: setup binaries
	$(PY) hack/cluster.py up

cluster-down:
	$(PY) hack/cluster.py down

# Down, then delete node-0's copy of the images (about 12 GB per cluster directory; `up` imports them again).
cluster-purge:
	$(PY) hack/cluster.py purge

cluster-status:
	$(PY) hack/cluster.py status

# Regenerate what is generated from code: the CRDs (manifests/crd/ and the chart's crds/, from the hparam
# registry), then manifests/rbac/ and manifests/operator/ (from the Helm chart). Tests fail when they are stale.
manifests: setup binaries
	$(PY) -m seqmodel_operator.crd
	$(PY) hack/manifests.py

# Regenerate the sample data (deterministic: the committed files are what this writes).
data: setup
	$(PY) data/make_sample.py

clean:
	rm -rf $(VENV) .pytest_cache out
