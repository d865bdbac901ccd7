"""`python hack/cluster.py up|down|purge|status`: the local cluster (see hack/README.md).

The cluster directory is `.cluster/` in the repository, or `--dir` / `$SEQMODEL_CLUSTER_DIR`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localcluster.control import Options, down, purge, status, up  # noqa: E402
from localcluster.layout import ClusterError, Layout  # noqa: E402


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="hack/cluster.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "purge", "status"])
    parser.add_argument("--dir", type=Path, help="cluster directory (default: $SEQMODEL_CLUSTER_DIR or .cluster)")
    parser.add_argument("--kwok-nodes", type=int, default=int(os.environ.get("SEQMODEL_KWOK_NODES",
                                                                              defaults.kwok_nodes)))
    parser.add_argument("--kwok-gpus", type=int, default=defaults.kwok_gpus, help="nvidia.com/gpu per kwok node")
    parser.add_argument("--node-gpus", type=int, default=int(os.environ.get("SEQMODEL_NODE_GPUS",
                                                                             defaults.node_gpus)),
                        help="nvidia.com/gpu advertised by node-0 (fake; its containers run on the CPU)")
    args = parser.parse_args(argv)
    lay = Layout(args.dir.resolve()) if args.dir else Layout.default()
    signal.signal(signal.SIGTERM, _interrupt)  # `up` stops what it started on the way out, as on Ctrl-C
    try:
        if args.command == "up":
            up(lay, Options(kwok_nodes=args.kwok_nodes, kwok_gpus=args.kwok_gpus, node_gpus=args.node_gpus))
        elif args.command == "down":
            return 0 if down(lay) else 1
        elif args.command == "purge":
            return 0 if purge(lay) else 1
        else:
            return 0 if status(lay) else 1
    except ClusterError as e:
        print(f"cluster {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"cluster {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
