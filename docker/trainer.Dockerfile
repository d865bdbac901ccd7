# syntax=docker/dockerfile:1
# The trainer image: every pod the operator renders runs in it (spec.image, else the operator's
# SEQMODEL_OPERATOR_IMAGE, seqmodel-trainer:<seqmodel VERSION>).
#   docker build -f docker/trainer.Dockerfile -t seqmodel-trainer:1.5.0 .
# The operator's child Job sets the command of each container (templates/job.yaml.j2):
#   init container `stage`: python -m seqmodel.pod stage ...  (claim the version directory, copy data to scratch)
#   container `trainer`:    python -m seqmodel.pod run ...    (seqmodel.run in scratch, outputs to /output)
# ENTRYPOINT is that same module, so `docker run IMAGE stage|run ...` does what the pod does;
# tests/unit/test_dockerfiles.py keeps the two equal.

# PyTorch's CUDA runtime image, carrying the torch version that pyproject.toml's `train` extra pins (a
# test keeps them equal), so pip keeps the base's torch instead of downloading it again. Pinned by its
# full tag; record its digest here (`docker buildx imagetools inspect <tag>`) on the first build with
# registry access and pin `@sha256:...` as well: the machines this repository is developed on reach no
# container registry. BASE_IMAGE is overridden only by `make images` (hack/localcluster/images.py): a
# local Debian bookworm base with that same torch (and the train extra's other dependencies) installed
# from PyPI, because no registry is reachable here; the default is the real public base.
ARG BASE_IMAGE=pytorch/pytorch:2.15.0-cuda13.2-cudnn9-runtime
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/seqmodel/build
COPY pyproject.toml README.md ./
COPY seqmodel ./seqmodel
COPY operator ./operator
# A regular (not editable) install: the build directory is removed afterwards.
RUN python -m pip install ".[train]" && rm -rf /opt/seqmodel/build

# Non-root, numerically (Kubernetes' runAsNonRoot can only verify a numeric user): the operator's
# settings.Config.run_as_user. The root filesystem is read-only in the pod; HOME and caches go to /tmp,
# which the pod mounts as a writable emptyDir (as it does /scratch).
ENV HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
USER 1000:1000
WORKDIR /scratch
ENTRYPOINT ["python", "-m", "seqmodel.pod"]
CMD ["--help"]
