"""`up`, `down` and `status` of one local cluster directory.

`up` makes the node's network namespace, starts etcd, then kube-apiserver, then the controller-manager,
scheduler, kwok and the local-path provisioner together, then the real node (containerd, kubelet, kube-proxy in
the namespace), creates the cluster's own objects (kwok nodes, storage class, RBAC, CoreDNS) and waits
until the cluster can run a pod. Everything it starts or changes is recorded in the state file as it
goes, so `down` (or a failed `up`) stops exactly those processes and puts the machine back as it was.
"""

from __future__ import annotations

import json
import shutil
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import bootstrap, components, hoststate, realnode
from .nodeconfig import NodePaths
from .components import Ports
from .layout import ClusterError, Layout, Versions
from .nodenet import NodeNet
from .pki import ensure_pki, identities, read_tokens, write_kubeconfig
from .procs import Proc, free_ports, spawn, stop

READY_TIMEOUT = 120.0


@dataclass
class Options:
    """What `up` builds. Defaults give the layout the tests and the demo expect."""

    kwok_nodes: int = 4
    kwok_gpus: int = 8
    gpu_product: str = "NVIDIA-A100-SXM4-80GB"
    node_gpus: int = 1  # fake: advertised by the real node, whose containers run on the CPU


@dataclass
class State:
    """The state file: ports, processes and options of a running cluster."""

    ports: Ports
    options: Options
    net: NodeNet | None
    procs: list[Proc] = field(default_factory=list)
    started: float = 0.0  # when `up` finished (epoch seconds); 0 while it runs or after it was killed midway

    def save(self, lay: Layout) -> None:
        data = {"ports": asdict(self.ports), "options": asdict(self.options),
                **({"net": self.net.index} if self.net is not None else {}),
                "procs": [p.to_dict() for p in self.procs], "started": self.started}
        tmp = lay.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(lay.state)

    @classmethod
    def load(cls, lay: Layout) -> "State | None":
        if not lay.state.exists():
            return None
        data = json.loads(lay.state.read_text())
        # A state from before the real node (no "net", the process node's options): `down` still stops it.
        ports = {"apiserver_host": "127.0.0.1", **data["ports"]}
        net = NodeNet(data["net"]) if "net" in data else None
        options = {k: v for k, v in data["options"].items() if k in Options.__dataclass_fields__}
        return cls(Ports(**ports), Options(**options), net,
                   [Proc.from_dict(p) for p in data["procs"]], data.get("started", 0.0))


def _http_ok(url: str, ctx: ssl.SSLContext | None, token: str | None = None, timeout: float = 2.0) -> bool:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return resp.status == 200 and resp.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


def _insecure() -> ssl.SSLContext:
    """For the controller-manager's and scheduler's /healthz, served with self-signed in-memory certs."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _wait(what: str, check: Callable[[], bool], procs: list[Proc], deadline: float) -> None:
    """Poll `check` until true; fail at once, naming the log, when one of our processes died."""
    while not check():
        for p in procs:
            if not p.alive():
                raise ClusterError(f"{p.name} exited while waiting for {what}; see {p.log}")
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}; logs in {Path(procs[0].log).parent}")
        time.sleep(0.2)


def _rotate_logs(lay: Layout) -> None:
    """Keep the previous run's logs as logs.previous/ (one generation) and start clean."""
    if lay.logs.exists():
        prev = lay.root / "logs.previous"
        shutil.rmtree(prev, ignore_errors=True)
        lay.logs.rename(prev)
    lay.logs.mkdir(parents=True, exist_ok=True)


def up(lay: Layout, opts: Options, say: Callable[[str], None] = print) -> float:
    """Start the cluster in `lay` (a no-op when it is already up); return the seconds it took."""
    state = State.load(lay)
    if state is not None:
        dead = [p.name for p in state.procs if not p.alive()]
        if not dead and state.started:
            say(f"cluster already up in {lay.root} (apiserver {state.ports.server}); nothing to do")
            return 0.0
        why = f"{', '.join(dead)} exited" if dead else "an earlier `up` did not finish"
        say(f"cluster in {lay.root} is partly down ({why}); restarting it")
        down(lay, say=lambda _: None)
    versions = Versions.load()
    versions.check()
    start = time.monotonic()
    deadline = start + READY_TIMEOUT
    lay.root.mkdir(parents=True, exist_ok=True)
    _rotate_logs(lay)
    net = realnode.claim_network(lay)
    ports = Ports(*free_ports(5), apiserver_host=net.host_ip)
    state = State(ports, opts, net)
    state.save(lay)  # from here on, `down` can undo what `up` did, however far it got
    try:
        realnode.prepare_host(net)
        tokens = ensure_pki(lay.pki, net)
    except BaseException:
        _undo(lay, state)
        raise
    ca = lay.pki / "ca.crt"
    for ident in identities():
        write_kubeconfig(lay.kubeconfig_of(ident.name), ports.server, ca, ident.user, tokens[ident.name])
    shutil.rmtree(lay.etcd_data, ignore_errors=True)

    def launch(name: str, argv: list[str]) -> None:
        state.procs.append(spawn(name, argv, lay.logs / f"{name}.log", cwd=lay.root))
        state.save(lay)

    try:
        launch("etcd", components.etcd(versions, lay, ports))
        _wait("etcd", lambda: _etcd_health(ports), state.procs, deadline)
        launch("kube-apiserver", components.apiserver(versions, lay, ports))
        api_ctx = ssl.create_default_context(cafile=str(ca))
        _wait("kube-apiserver /readyz", lambda: _http_ok(f"{ports.server}/readyz", api_ctx, tokens["admin"]),
              state.procs, deadline)
        say(f"apiserver ready on {ports.server} ({time.monotonic() - start:.1f} s)")
        launch("kube-controller-manager", components.controller_manager(versions, lay, ports))
        launch("kube-scheduler", components.scheduler(versions, lay, ports))
        launch("kwok", components.kwok(versions, lay))
        launch("provisioner", components.provisioner(lay))
        realnode.start(lay, versions, net, launch, lambda what, check: _wait(what, check, state.procs, deadline), say)
        api = bootstrap.admin_client(lay.kubeconfig)
        bootstrap.create_objects(api, opts)
        realnode.create_objects(api, versions)
        insecure = _insecure()
        _wait("kube-controller-manager /healthz",
              lambda: _http_ok(f"https://127.0.0.1:{ports.controller_manager}/healthz", insecure),
              state.procs, deadline)
        _wait("kube-scheduler /healthz",
              lambda: _http_ok(f"https://127.0.0.1:{ports.scheduler}/healthz", insecure), state.procs, deadline)
        nodes = [realnode.NODE_NAME, *bootstrap.kwok_node_names(opts)]
        _wait(f"nodes {', '.join(nodes)} Ready", lambda: bootstrap.nodes_ready(api, nodes), state.procs, deadline)
        realnode.advertise_gpus(api, opts.node_gpus)
        _wait("ServiceAccount default/default", lambda: bootstrap.default_sa_exists(api), state.procs, deadline)
        _wait("CoreDNS ready", lambda: realnode.dns_ready(api), state.procs, deadline)
    except BaseException:
        _undo(lay, state)
        raise
    state.started = time.time()
    state.save(lay)
    took = time.monotonic() - start
    say(f"cluster up in {took:.1f} s: {len(nodes)} nodes ({', '.join(nodes)})")
    say(f"  export KUBECONFIG={lay.kubeconfig}")
    return took


def _etcd_health(ports: Ports) -> bool:
    """etcd answers /health with JSON, not `ok`."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ports.etcd_client}/health", timeout=2) as resp:
            return json.loads(resp.read()).get("health") == "true"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def down(lay: Layout, say: Callable[[str], None] = print) -> bool:
    """Stop this cluster's processes (by saved PID and start time), drop its etcd data and put back what the
    node changed on the host; False when something could not be undone (each is said).

    Logs, volumes (PVC directories), the node's images and the PKI are kept.
    """
    state = State.load(lay)
    if state is None:
        say(f"no cluster in {lay.root}; nothing to stop")
        return True
    killed, left = _undo(lay, state)
    lay.kubeconfig.unlink(missing_ok=True)
    note = f" (had to SIGKILL {', '.join(killed)})" if killed else ""
    say(f"cluster in {lay.root} stopped{note}")
    for what in left:
        say(f"  could not undo: {what}")
    return not left


def purge(lay: Layout, say: Callable[[str], None] = print) -> bool:
    """`down`, then delete node-0's images and snapshots (about 12 GB): the next `up` imports them again.

    For a cluster directory no longer used, and CI's, whose clone is never run again. Nothing is deleted when
    `down` could not undo everything (a mount left under the node would be deleted through)."""
    if not down(lay, say) or hoststate.mounts_under(lay.node):
        say(f"not purging {lay.root}: something is still mounted or running there (see above)")
        return False
    root = NodePaths(lay.node).containerd_root
    if root.exists():
        size = sum(f.lstat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
        shutil.rmtree(root)
        say(f"deleted node-0's images and snapshots in {root} ({size / 1e9:.1f} GB)")
    return True


def _undo(lay: Layout, state: State) -> tuple[list[str], list[str]]:
    """Stop everything `state` records and put the host back; return (SIGKILLed names, what is left over)."""
    killed = stop([p for p in state.procs if p.name in realnode.AGENTS], grace=10.0)
    left = []
    if state.net is not None:
        containerd = [p for p in state.procs if p.name == "containerd"]
        left += _attempt("removing node-0's containers", lambda: realnode.remove_containers(lay, state.net, containerd))
    # The apiserver before etcd: without its storage it would keep retrying instead of shutting down.
    killed += stop([p for p in state.procs if p.name not in ("etcd", *realnode.AGENTS)], grace=15.0)
    killed += stop([p for p in state.procs if p.name == "etcd"], grace=15.0)
    if state.net is not None:
        left += _attempt("restoring the host", lambda: realnode.restore_host(lay, state.net))
    shutil.rmtree(lay.etcd_data, ignore_errors=True)
    lay.state.unlink(missing_ok=True)
    return killed, left


def _attempt(what: str, step: Callable[[], list[str]]) -> list[str]:
    """Run one clean-up step; a failure is reported, and never keeps `down` from stopping the rest."""
    try:
        return step()
    except Exception as e:  # noqa: BLE001 - whatever went wrong, the control plane must still be stopped
        return [f"{what}: {type(e).__name__}: {e}"]


def status(lay: Layout, say: Callable[[str], None] = print) -> bool:
    """Print the processes, ports and health of the cluster; True when everything is up and ready."""
    state = State.load(lay)
    if state is None:
        say(f"no cluster in {lay.root}")
        return False
    ok = True
    for p in state.procs:
        alive = p.alive()
        ok &= alive
        say(f"  {p.name:<24} pid {p.pid:<8} {'running' if alive else 'EXITED'}")
    # Read-only: `status` must not regenerate the PKI or rewrite tokens.csv of a running cluster.
    ready = _http_ok(f"{state.ports.server}/readyz",
                     ssl.create_default_context(cafile=str(lay.pki / "ca.crt")),
                     read_tokens(lay.pki / "tokens.csv").get("admin"))
    ok &= ready
    say(f"  apiserver {state.ports.server} readyz {'ok' if ready else 'NOT ready'}")
    say(f"  etcd 127.0.0.1:{state.ports.etcd_client}; kubeconfig {lay.kubeconfig}; logs {lay.logs}")
    if ready:
        api = bootstrap.admin_client(lay.kubeconfig)
        for name, cond in bootstrap.node_conditions(api):
            say(f"  node {name:<22} Ready={cond}")
    if not state.started:
        say(f"cluster in {lay.root}: `up` has not finished (still starting, or it was killed: run `up` again)")
        return False
    say(f"cluster in {lay.root}: {'up' if ok else 'DEGRADED'} for {time.time() - state.started:.0f} s")
    return ok

