"""`python -m seqmodel_operator [--namespace NS ... | --all-namespaces] [--liveness URL] [--log-format json]`."""

from __future__ import annotations

import argparse
import os
import socket

import kopf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqmodel_operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=[],
                       help="watch this namespace (repeat for several; globs like 'team-*' work)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (the default)")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                        help="kopf's liveness endpoint ('' to disable)")
    parser.add_argument("--log-format", choices=["json", "full", "plain"], default="json",
                        help="structured JSON logs by default")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()], log_refkey="object")
    import seqmodel_operator.handlers  # noqa: F401  registers the handlers

    # kopf's default identity asks for the user's name, which a numeric non-root user of an image without a
    # passwd entry (the chart's runAsUser) does not have: the operator crashed at start in its own image.
    kopf.run(standalone=True, clusterwide=not args.namespace, namespaces=args.namespace,
             liveness_endpoint=args.liveness or None, identity=f"{socket.gethostname()}/{os.getpid()}")


if __name__ == "__main__":
    main()
