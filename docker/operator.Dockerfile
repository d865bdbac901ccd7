# syntax=docker/dockerfile:1
# The operator image: kopf and the Kubernetes client, no torch (`seqmodel[operator]` only).
#   docker build -f docker/operator.Dockerfile -t seqmodel-operator:1.5.0 .
# The Helm chart's Deployment runs `python -m seqmodel_operator` with the watch scope and probe
# arguments (charts/seqmodel-operator/templates/operator/deployment.yaml); tests/unit/test_dockerfiles.py
# keeps its command equal to this ENTRYPOINT.

# Slim Debian with CPython 3.11 (the version the project is developed and tested with), pinned by its full
# tag; record its digest here (`docker buildx imagetools inspect <tag>`) on the first build with registry
# access and pin `@sha256:...` as well: the machines this repository is developed on reach no registry.
# BASE_IMAGE is overridden only by `make images` (hack/localcluster/images.py), which builds on a local
# Debian bookworm base with the same Python 3.11 because no registry is reachable here; the default is
# the real public base, which a plain `docker build` uses.
ARG BASE_IMAGE=python:3.11.13-slim-bookworm
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY seqmodel ./seqmodel
COPY operator ./operator
# Into a virtual environment that the final stage copies whole: no build tools or sources ship.
RUN python -m venv /opt/venv && /opt/venv/bin/python -m pip install ".[operator]"

FROM ${BASE_IMAGE}
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Non-root, numerically (runAsNonRoot can only verify a numeric user); the chart's runAsUser.
USER 1000:1000
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "seqmodel_operator"]
CMD ["--all-namespaces"]
