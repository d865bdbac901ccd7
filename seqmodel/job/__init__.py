"""The notebook client: submitting runs from Python. `Job` (backends "kubernetes" and "local"), `search`
(grid, random, submit_all, sweep) and the job log. Torch-free, and nothing here imports the Kubernetes
client until a kubernetes job or sweep talks to the API server (seqmodel.job.kubeapi).

    from seqmodel.job import Job, search
    job = Job({"lr": 2e-3}, backend="local").submit()
    job.wait(); job.outputs()
"""

from seqmodel.job import joblog, search
from seqmodel.job.api import Job, JobStateError
from seqmodel.job.defaults import JobConfig, JobConfigError, load_config
from seqmodel.job.kubeapi import KubeError
from seqmodel.job.spec import JobSpecError
from seqmodel.job.status import JobFailed, JobStatus, ReplicateStatus, WaitTimeout
from seqmodel.job.sweep import Sweep, SweepFailed, SweepStatus, Trial

__all__ = ["Job", "JobConfig", "JobConfigError", "JobFailed", "JobSpecError", "JobStateError", "JobStatus",
           "KubeError", "ReplicateStatus", "Sweep", "SweepFailed", "SweepStatus", "Trial", "WaitTimeout", "joblog",
           "load_config", "search"]
