"""The local cluster's local-path provisioner (started by `hack/cluster.py up`): claim `<name>` of StorageClass
`local-path` becomes a hostPath volume on `<cluster>/volumes/<name>` (localcluster/provisioner.py)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import config  # noqa: E402

from localcluster.provisioner import Provisioner  # noqa: E402


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hack/local_path_provisioner.py", description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", required=True, help="credentials of seqmodel:local-path-provisioner")
    p.add_argument("--claims-dir", required=True, type=Path, help="where claim directories are made")
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log(f"provisioning claims into {args.claims_dir}")
    Provisioner(config.new_client_from_config(config_file=args.kubeconfig), args.claims_dir.resolve(), stop, log).run()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
