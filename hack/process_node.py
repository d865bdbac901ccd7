"""The process node agent (started by `hack/cluster.py up`): Node `local-0` whose pods run as host processes.

A development and test tool, never shipped: it ignores images and runs each container's command and
args with the host's Python environment (this venv first on PATH). See hack/README.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import config  # noqa: E402

from localcluster.layout import Layout  # noqa: E402
from localcluster.node.agent import Agent, AgentConfig  # noqa: E402


class _Stop(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT to leave the watch loop."""


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hack/process_node.py", description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", required=True, help="credentials of system:node:<name>")
    p.add_argument("--provisioner-kubeconfig", required=True, help="credentials of the local-path provisioner")
    p.add_argument("--cluster-dir", required=True, type=Path)
    p.add_argument("--node-name", default="local-0")
    p.add_argument("--gpus", type=int, default=1, help="nvidia.com/gpu to advertise (fake)")
    p.add_argument("--kubelet-version", default="v0.0.0")
    args = p.parse_args(argv)
    agent = Agent(AgentConfig(args.node_name, args.gpus, args.kubelet_version, Layout(args.cluster_dir.resolve())),
                  config.new_client_from_config(config_file=args.kubeconfig),
                  config.new_client_from_config(config_file=args.provisioner_kubeconfig), log)

    def on_signal(signum: int, _frame) -> None:
        agent.stop.set()
        raise _Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.run()
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log("stopping: terminating pod processes")
        agent.shutdown()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
