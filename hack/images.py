"""`python hack/images.py build|refs|import`: the trainer and operator images, built locally with buildah.

  build   build what the current sources need (the bases once, then each image unless its ref exists) and
          print `<name>=<ref>` per image on stdout (progress goes to stderr)
  refs    print the refs of the current sources without building (exit 1 when one is not built yet)
  import  import the current images (both tags of each) into a containerd: --address SOCKET, or --dir CLUSTER
          for the node of a local cluster (hack/cluster.py)

See hack/localcluster/images.py for how and why; the cache is $XDG_CACHE_HOME/seqmodel/images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localcluster import images  # noqa: E402
from localcluster.layout import Layout  # noqa: E402
from localcluster.nodeconfig import NodePaths  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/images.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("build", "build or find the images"), ("refs", "print the current refs"),
                        ("import", "import the images into a containerd")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("names", nargs="*", metavar="IMAGE", help=f"{' and/or '.join(images.IMAGES)} (default: both)")
        p.add_argument("--json", action="store_true", help="one JSON object per image instead of name=ref")
        if name == "import":
            where = p.add_mutually_exclusive_group(required=True)
            where.add_argument("--address", help="containerd's socket")
            where.add_argument("--dir", type=Path, help="a local cluster's directory: its node-0's containerd")
            p.add_argument("--namespace", default=images.NAMESPACE)
            p.add_argument("--snapshotter", default=None)
    args = parser.parse_args(argv)
    names = tuple(args.names) or images.IMAGES
    unknown = [n for n in names if n not in images.IMAGES]
    if unknown:
        parser.error(f"unknown image {', '.join(unknown)}: one of {', '.join(images.IMAGES)}")
    start = time.monotonic()
    timings: dict[str, float] = {}
    try:
        if args.command == "refs":
            found = images.refs(names)
        else:
            found = images.build(names, timings=timings)
        if args.command == "import":
            t0 = time.monotonic()
            node = NodePaths(Layout(args.dir.resolve()).node) if args.dir else None
            images.import_images(args.address or str(node.containerd_socket),
                                 [r for i in found.values() for r in (i.ref, i.plain)], namespace=args.namespace,
                                 snapshotter=args.snapshotter, root=node and node.containerd_root)
            timings["export+import"] = round(time.monotonic() - t0, 1)
    except images.ImageError as e:
        print(f"images: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("images: interrupted", file=sys.stderr)
        return 130
    for image in found.values():
        if args.json:
            print(json.dumps({"name": image.name, "ref": image.ref, "plain": image.plain, "id": image.id,
                              "size": image.size, "built": image.built}))
        else:
            print(f"{image.name}={image.ref}")
    if args.command != "refs":
        steps = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        images.log(f"done in {time.monotonic() - start:.1f} s" + (f" ({steps})" if steps else ""))
    missing = [i.ref for i in found.values() if not i.built and not i.id]
    if missing:
        print(f"images: not built yet (run `make images`): {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
