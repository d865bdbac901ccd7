"""The real node's configuration and host bookkeeping, without starting anything (hack/localcluster/)."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack"))

from localcluster import addons, hoststate, nodeconfig, nodenet  # noqa: E402
from localcluster.nodeconfig import NodePaths  # noqa: E402
from localcluster.nodenet import NodeNet  # noqa: E402


@pytest.mark.parametrize("index", [0, 7, 255])
def test_addresses_of_a_cluster_index_are_private_and_consistent(index):
    net = NodeNet(index)
    host, node = ipaddress.ip_address(net.host_ip), ipaddress.ip_address(net.node_ip)
    link = ipaddress.ip_network(f"{net.host_ip}/30", strict=False)
    pods = ipaddress.ip_network(net.pod_cidr)
    assert host in link and node in link and host != node
    assert ipaddress.ip_address(net.pod_gateway) in pods
    assert all(a.is_private for a in (host, node, pods.network_address))
    assert not pods.overlaps(link)
    assert len(net.host_link) <= 15  # IFNAMSIZ
    assert net.enter()[:2] == ["nsenter", f"--net=/run/netns/seqmodel-{index}"]


def test_pick_skips_indexes_in_use(monkeypatch):
    monkeypatch.setattr(nodenet, "taken", lambda: {5, 6})
    assert nodenet.pick(5).index == 7
    assert nodenet.pick(255).index == 255
    monkeypatch.setattr(nodenet, "taken", lambda: set(range(256)))
    with pytest.raises(nodenet.ClusterError, match="no free cluster network index"):
        nodenet.pick(0)


def listeners(cfg: dict) -> list[str]:
    return [cfg["address"], cfg["healthzBindAddress"]]


def test_the_kubelet_listens_on_the_node_address_and_loopback_only(tmp_path):
    net, paths = NodeNet(3), NodePaths(tmp_path / "node")
    cfg = nodeconfig.kubelet(net, paths, tmp_path / "pki")
    assert listeners(cfg) == [net.node_ip, "127.0.0.1"]
    assert cfg["readOnlyPort"] == 0 and cfg["authentication"]["anonymous"]["enabled"] is False
    assert cfg["authorization"]["mode"] == "Webhook"
    assert cfg["clusterDNS"] == [nodeconfig.DNS_SERVICE_IP] and cfg["resolvConf"] == ""
    assert cfg["containerRuntimeEndpoint"] == f"unix://{paths.containerd_socket}"
    assert cfg["imageGCHighThresholdPercent"] == 100  # never collects images built here


def test_kube_proxy_leaves_machine_wide_conntrack_settings_alone(tmp_path):
    net = NodeNet(3)
    cfg = nodeconfig.kube_proxy(net, tmp_path / "kc")
    assert cfg["conntrack"]["maxPerCore"] == 0 and cfg["conntrack"]["min"] == 0
    assert cfg["bindAddress"] == net.node_ip
    for key in ("healthzBindAddress", "metricsBindAddress"):
        assert cfg[key].startswith("127.0.0.1:")


def test_containerd_keeps_state_in_the_cluster_and_restricts_oom_score_adj(tmp_path):
    import tomllib

    paths = NodePaths(tmp_path / "node")
    cfg = tomllib.loads(nodeconfig.containerd(paths))
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # runc fails without it where CAP_SYS_RESOURCE is missing
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == nodeconfig.PAUSE_IMAGE
    assert cri["stream_server_address"] == "127.0.0.1"
    for key in ("root", "state"):
        assert Path(cfg[key]).is_relative_to(tmp_path)
    assert Path(cfg["grpc"]["address"]).is_relative_to(tmp_path)
    assert cfg["ttrpc"]["address"] == "" and cfg["metrics"]["address"] == ""


def test_the_pod_network_never_masquerades(tmp_path):
    net, paths = NodeNet(9), NodePaths(tmp_path / "node")
    plugin, = nodeconfig.cni(net, paths)["plugins"]
    assert plugin["type"] == "bridge" and plugin["ipMasq"] is False
    assert plugin["ipam"]["ranges"] == [[{"subnet": net.pod_cidr, "gateway": net.pod_gateway}]]
    assert Path(plugin["ipam"]["dataDir"]).is_relative_to(tmp_path)


def test_coredns_answers_the_cluster_domain_only_and_runs_restricted():
    assert "forward" not in addons.COREFILE and "cluster.local" in addons.COREFILE
    objs = {o["kind"]: o for o in addons.coredns("v1.14.7")}
    pod = objs["Deployment"]["spec"]["template"]["spec"]
    container, = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["imagePullPolicy"] == "Never"
    svc = objs["Service"]["spec"]
    assert svc["clusterIP"] == nodeconfig.DNS_SERVICE_IP
    assert {(p["port"], p["targetPort"], p["protocol"]) for p in svc["ports"]} == {
        (53, addons.DNS_PORT, "UDP"), (53, addons.DNS_PORT, "TCP")}
    assert addons.DNS_PORT > 1024


@pytest.fixture
def fake_sysctls(tmp_path, monkeypatch):
    """/proc/sys under tmp_path, and no other cluster's node network."""
    root = tmp_path / "proc-sys"
    for key, value in {"vm.overcommit_memory": "0", "kernel.panic": "1"}.items():
        path = root / key.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    monkeypatch.setattr(hoststate, "_sysctl_path", lambda key: root / key.replace(".", "/"))
    monkeypatch.setattr(hoststate, "SAVED_SYSCTLS", tmp_path / "saved.json")
    others = []
    monkeypatch.setattr(hoststate, "_other_nodes_running", lambda: bool(others))
    return root, others


def test_sysctls_the_kubelet_changed_are_restored_by_the_last_node_down(fake_sysctls):
    root, others = fake_sysctls
    hoststate.save_sysctls()
    (root / "kernel/panic").write_text("10\n")  # what the kubelet does at start
    (root / "vm/overcommit_memory").write_text("1\n")
    others.append("another cluster")  # still running: its kubelet needs them
    assert hoststate.restore_sysctls() == []
    hoststate.save_sysctls()  # a second cluster's `up` must not record the kubelet's values as the originals
    assert json.loads(hoststate.SAVED_SYSCTLS.read_text()) == {"vm.overcommit_memory": "0", "kernel.panic": "1"}
    others.clear()
    assert sorted(hoststate.restore_sysctls()) == ["kernel.panic", "vm.overcommit_memory"]
    assert (root / "kernel/panic").read_text().strip() == "1"
    assert (root / "vm/overcommit_memory").read_text().strip() == "0"
    assert not hoststate.SAVED_SYSCTLS.exists()


def test_mounts_under_a_directory_are_listed_deepest_first(monkeypatch, tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text("\n".join([
        "1 0 0:1 / / rw - ext4 /dev/vda rw",
        "2 1 0:2 / /work/c/node/kubelet rw - ext4 /dev/vda rw",
        "3 2 0:3 / /work/c/node/kubelet/pods/x/volumes/token rw - tmpfs tmpfs rw",
        "4 1 0:4 / /work/c/node-other rw - tmpfs tmpfs rw",
        "5 1 0:5 / /work/c/node/run/with\\040space rw - tmpfs tmpfs rw",
    ]) + "\n")
    real = Path
    monkeypatch.setattr(hoststate, "Path", lambda p: info if p == "/proc/self/mountinfo" else real(p))
    assert hoststate.mounts_under(real("/work/c/node")) == [
        real("/work/c/node/kubelet/pods/x/volumes/token"), real("/work/c/node/run/with space"),
        real("/work/c/node/kubelet")]


def test_a_state_file_from_before_the_real_node_still_loads_so_down_can_stop_it(tmp_path):
    from localcluster.control import State
    from localcluster.layout import Layout

    lay = Layout(tmp_path)
    lay.state.write_text(json.dumps({
        "ports": {"etcd_client": 1, "etcd_peer": 2, "apiserver": 3, "controller_manager": 4, "scheduler": 5},
        "options": {"node_name": "local-0", "local_gpus": 1, "kwok_nodes": 4, "kwok_gpus": 8,
                    "gpu_product": "x"},
        "procs": [{"name": "etcd", "pid": 1, "start_time": 1, "log": ""}], "started": 1.0}))
    state = State.load(lay)
    assert state.net is None and state.ports.server == "https://127.0.0.1:3" and state.options.kwok_nodes == 4
    state.net = NodeNet(4)
    state.save(lay)
    assert State.load(lay).net == NodeNet(4)


def test_purge_deletes_the_nodes_images_and_keeps_the_rest(tmp_path, monkeypatch):
    from localcluster import control
    from localcluster.layout import Layout

    lay = Layout(tmp_path)
    layer = NodePaths(lay.node).containerd_root / "io.containerd.content.v1.content" / "blobs" / "sha256" / "ab"
    layer.parent.mkdir(parents=True)
    layer.write_bytes(b"x" * 1000)
    for kept in (lay.logs / "kubelet.log", lay.volumes / "claim" / "model.ckpt", lay.pki / "ca.crt"):
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text("kept")
    said = []
    monkeypatch.setattr(hoststate, "mounts_under", lambda root: [root / "kubelet" / "pods" / "x"])
    assert not control.purge(lay, said.append)  # something still mounted: deleting would go through it
    assert layer.exists() and "not purging" in said[-1]
    monkeypatch.setattr(hoststate, "mounts_under", lambda root: [])
    assert control.purge(lay, said.append)
    assert not NodePaths(lay.node).containerd_root.exists()
    assert all(p.read_text() == "kept" for p in (lay.logs / "kubelet.log", lay.volumes / "claim" / "model.ckpt",
                                                  lay.pki / "ca.crt"))
    assert control.purge(lay, said.append)  # again: nothing left to delete, still fine
