"""The process node `local-0`: pods run as host processes with volumes, env and status like a kubelet's."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from e2e_support import (LOCAL_PLACEMENT, job, job_condition, job_pods, pid_alive, pod_gone, pod_phase, pvc,
                         running_pid, wait_for)


def python(code: str, **extra) -> dict:
    return {"name": "main", "image": "ignored-by-the-process-node", "command": ["python", "-c", code], **extra}


def create_pod(core, ns: str, name: str, spec: dict, **metadata):
    return core.create_namespaced_pod(ns, {"metadata": {"name": name, **metadata},
                                           "spec": {**LOCAL_PLACEMENT, **spec}})


def finished(core, ns: str, name: str) -> str | None:
    phase = pod_phase(core, ns, name)
    return phase if phase in ("Succeeded", "Failed") else None


def test_job_writes_into_a_pvc_subpath_and_reports_its_termination_message(cluster, core, batch, namespace):
    claim = f"out-{namespace}"  # <cluster>/volumes/<claim> is shared by namespaces: keep the name unique
    core.create_namespaced_persistent_volume_claim(namespace, pvc(claim))
    code = ("import json, os, sys\n"
            "open('/out/result.txt', 'w').write(os.environ['POD_NAME'])\n"
            "summary = {'python': sys.executable, 'val_loss': 0.25}\n"
            "open('/dev/termination-log', 'w').write(json.dumps(summary))\n")
    container = python(code, env=[{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                       volumeMounts=[{"name": "out", "mountPath": "/out", "subPath": "runs/demo/version_0"}])
    spec = {**LOCAL_PLACEMENT, "containers": [container],
            "volumes": [{"name": "out", "persistentVolumeClaim": {"claimName": claim}}]}
    try:
        batch.create_namespaced_job(namespace, job("write", spec))

        assert wait_for(lambda: job_condition(batch, namespace, "write"), 90, "the Job to finish") == "Complete"
        pod = job_pods(core, namespace, "write")[0]
        assert pod.spec.node_name == "local-0"
        written = cluster.layout.volumes / claim / "runs" / "demo" / "version_0" / "result.txt"
        assert written.read_text() == pod.metadata.name
        term = pod.status.container_statuses[0].state.terminated
        assert (term.exit_code, term.reason) == (0, "Completed")
        summary = json.loads(term.message)
        assert summary == {"python": str(Path(sys.prefix) / "bin" / "python"), "val_loss": 0.25}
    finally:
        shutil.rmtree(cluster.layout.volumes / claim, ignore_errors=True)


def test_deleting_a_running_pod_sends_sigterm_to_its_process(core, namespace, tmp_path):
    code = ("import pathlib, signal, sys, time\n"
            "def bye(*_):\n"
            "    pathlib.Path('/shared/signal').write_text('SIGTERM')\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            "pathlib.Path('/shared/started').write_text('yes')\n"
            "time.sleep(600)\n")
    create_pod(core, namespace, "sleeper", {
        "restartPolicy": "Never", "containers": [python(code, volumeMounts=[{"name": "s", "mountPath": "/shared"}])],
        "volumes": [{"name": "s", "hostPath": {"path": str(tmp_path)}}]})
    wait_for(lambda: (tmp_path / "started").exists(), 60, "the process to start")
    pid = running_pid(core, namespace, "sleeper")
    assert pid_alive(pid)

    core.delete_namespaced_pod("sleeper", namespace)

    wait_for(lambda: pod_gone(core, namespace, "sleeper"), 30, "the pod object to be deleted")
    assert not pid_alive(pid)
    assert (tmp_path / "signal").read_text() == "SIGTERM"


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(core, namespace, tmp_path):
    code = ("import pathlib, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "pathlib.Path('/shared/ignoring').write_text('yes')\ntime.sleep(600)\n")
    create_pod(core, namespace, "stubborn", {
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
        "containers": [python(code, volumeMounts=[{"name": "s", "mountPath": "/shared"}])],
        "volumes": [{"name": "s", "hostPath": {"path": str(tmp_path)}}]})
    wait_for(lambda: (tmp_path / "ignoring").exists(), 60, "the process to ignore SIGTERM")
    pid = running_pid(core, namespace, "stubborn")

    start = time.monotonic()
    core.delete_namespaced_pod("stubborn", namespace)
    wait_for(lambda: not pid_alive(pid), 20, "the process to be killed")
    took = time.monotonic() - start

    assert took >= 1.5, f"killed after {took:.1f} s, before the 2 s grace period"
    wait_for(lambda: pod_gone(core, namespace, "stubborn"), 20, "the pod object to be deleted")


def test_init_containers_env_downward_api_configmaps_tokens_and_working_dir(core, namespace, tmp_path):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"},
                                                  "data": {"lr": "0.001", "trainer.yaml": "batch_size: 8\n"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"}, "stringData": {"key": "s3cr3t"}})
    main = ("import json, os\n"
            "open('order', 'a').write('c')\n"
            "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
            "out = {'order': open('order').read(), 'cwd': os.getcwd(), 'lr': os.environ['LR'],\n"
            "       'cfg_lr': os.environ['CFG_lr'], 'greeting': os.environ['GREETING'],\n"
            "       'literal': os.environ['LITERAL'], 'trainer': open('/etc/seqmodel/trainer.yaml').read(),\n"
            "       'token_parts': len(open(sa + '/token').read().split('.')),\n"
            "       'sa_namespace': open(sa + '/namespace').read(), 'data_dir': os.environ['DATA_DIR'],\n"
            "       'secret_env': os.environ['KEY'], 'secret_file': open('/etc/creds/key').read(),\n"
            "       'downward': [os.environ[k] for k in ('RUN', 'NODE', 'UID', 'POD_IP', 'CPU_MILLIS')],\n"
            "       'one_file': open('/etc/trainer.yaml').read()}\n"
            "json.dump(out, open('/results/out.json', 'w'))\n")
    work = [{"name": "work", "mountPath": "/work"}]
    create_pod(core, namespace, "configured", {
        "restartPolicy": "Never",
        "initContainers": [
            python("open('/work/order', 'a').write('a')", name="first", volumeMounts=work),
            {"name": "second", "image": "x", "command": ["sh", "-c", "printf b >> /work/order"], "volumeMounts": work},
        ],
        "containers": [python(main, workingDir="/work", env=[
            {"name": "LR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "lr"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "GREETING", "value": "hello $(NS)"},
            {"name": "LITERAL", "value": "$$(NS)"},
            {"name": "DATA_DIR", "value": "/work/data"},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "key"}}},
            {"name": "RUN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['seqmodel.dev/run']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "CPU_MILLIS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
        ], resources={"limits": {"cpu": "500m"}},
        envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}], volumeMounts=[
            *work, {"name": "cfg", "mountPath": "/etc/seqmodel"}, {"name": "results", "mountPath": "/results"},
            {"name": "cfg", "mountPath": "/etc/trainer.yaml", "subPath": "trainer.yaml"},
            {"name": "creds", "mountPath": "/etc/creds"}])],
        "volumes": [{"name": "work", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "settings"}},
                    {"name": "results", "hostPath": {"path": str(tmp_path)}},
                    {"name": "creds", "secret": {"secretName": "creds"}}],
    }, annotations={"seqmodel.dev/run": "bs=8,lr=0.001"})

    assert wait_for(lambda: finished(core, namespace, "configured"), 90, "the pod to finish") == "Succeeded"
    out = json.loads((tmp_path / "out.json").read_text())
    work_dir = out.pop("cwd")
    uid = core.read_namespaced_pod("configured", namespace).metadata.uid
    assert out.pop("downward") == ["bs=8,lr=0.001", "local-0", uid, "127.0.0.1", "500"]
    assert out.pop("one_file") == "batch_size: 8\n"  # a subPath naming a file mounts that file
    assert out == {"order": "abc", "lr": "0.001", "cfg_lr": "0.001", "greeting": f"hello {namespace}",
                   "literal": "$(NS)", "trainer": "batch_size: 8\n", "token_parts": 3,
                   "sa_namespace": namespace, "data_dir": f"{work_dir}/data", "secret_env": "s3cr3t",
                   "secret_file": "s3cr3t"}
    assert work_dir != "/work" and Path(work_dir).name == "work"
    pod = core.read_namespaced_pod("configured", namespace)
    assert [(s.name, s.state.terminated.exit_code) for s in pod.status.init_container_statuses] == [
        ("first", 0), ("second", 0)]
    assert {c.type: c.status for c in pod.status.conditions}["Initialized"] == "True"


def test_generic_ephemeral_volume_is_a_temporary_directory(cluster, core, namespace, tmp_path):
    template = {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    code = ("import os\n"
            "open('/scratch/x', 'w').write('x')\n"
            "open('/results/where', 'w').write(os.path.realpath('/scratch'))\n")
    create_pod(core, namespace, "eph", {
        "restartPolicy": "Never",
        "containers": [python(code, volumeMounts=[{"name": "scratch", "mountPath": "/scratch"},
                                                  {"name": "results", "mountPath": "/results"}])],
        "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": template}},
                    {"name": "results", "hostPath": {"path": str(tmp_path)}}]})

    assert wait_for(lambda: finished(core, namespace, "eph"), 90, "the pod to finish") == "Succeeded"
    claim = core.read_namespaced_persistent_volume_claim("eph-scratch", namespace)  # made by the controller
    assert claim.metadata.owner_references[0].name == "eph"
    where = Path((tmp_path / "where").read_text())
    assert where.is_relative_to(cluster.layout.pods) and (where / "x").read_text() == "x"


def test_restart_policy_on_failure_restarts_the_failed_container(core, namespace):
    code = ("import pathlib, sys\n"
            "p = pathlib.Path('/scratch/attempts')\n"
            "n = int(p.read_text()) if p.exists() else 0\n"
            "p.write_text(str(n + 1))\n"
            "sys.exit(0 if n >= 1 else 1)\n")
    create_pod(core, namespace, "flaky", {
        "restartPolicy": "OnFailure",
        "containers": [python(code, volumeMounts=[{"name": "s", "mountPath": "/scratch"}])],
        "volumes": [{"name": "s", "emptyDir": {}}]})

    assert wait_for(lambda: finished(core, namespace, "flaky"), 90, "the pod to finish") == "Succeeded"
    status = core.read_namespaced_pod("flaky", namespace).status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1
    assert status.state.terminated.exit_code == 0


def test_failed_container_reports_exit_code_and_falls_back_to_its_log(core, namespace):
    code = "import sys\nprint('loading shards', flush=True)\nprint('fatal: bad shard 17', file=sys.stderr)\nsys.exit(7)"
    create_pod(core, namespace, "broken", {"restartPolicy": "Never", "containers": [
        python(code, terminationMessagePolicy="FallbackToLogsOnError")]})

    assert wait_for(lambda: finished(core, namespace, "broken"), 60, "the pod to finish") == "Failed"
    term = core.read_namespaced_pod("broken", namespace).status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (7, "Error")
    assert "fatal: bad shard 17" in term.message


def test_active_deadline_stops_the_pod(core, namespace, tmp_path):
    code = "import os, time\nopen('/shared/pid', 'w').write(str(os.getpid()))\ntime.sleep(600)\n"
    create_pod(core, namespace, "slow", {
        "restartPolicy": "Never", "activeDeadlineSeconds": 5,  # room for a slow start
        "containers": [python(code, volumeMounts=[{"name": "s", "mountPath": "/shared"}])],
        "volumes": [{"name": "s", "hostPath": {"path": str(tmp_path)}}]})

    assert wait_for(lambda: finished(core, namespace, "slow"), 60, "the deadline") == "Failed"
    assert core.read_namespaced_pod("slow", namespace).status.reason == "DeadlineExceeded"
    assert not pid_alive(int((tmp_path / "pid").read_text()))


@pytest.mark.parametrize("volume", [{"nfs": {"server": "127.0.0.1", "path": "/exports"}}])
def test_unsupported_volume_fails_the_pod_with_a_clear_reason(core, namespace, volume):
    create_pod(core, namespace, "nfs", {"restartPolicy": "Never", "containers": [python("print(1)")],
                                        "volumes": [{"name": "v", **volume}]})

    assert wait_for(lambda: finished(core, namespace, "nfs"), 60, "the pod to fail") == "Failed"
    status = core.read_namespaced_pod("nfs", namespace).status
    assert status.reason == "UnsupportedVolume" and "nfs" in status.message


def test_failing_init_container_fails_the_pod_without_starting_the_main_one(core, namespace):
    create_pod(core, namespace, "no-data", {
        "restartPolicy": "Never",
        "initContainers": [python("import sys; sys.exit(3)", name="stage")],
        "containers": [python("raise SystemExit('the main container must not run')")]})

    assert wait_for(lambda: finished(core, namespace, "no-data"), 60, "the pod to fail") == "Failed"
    status = core.read_namespaced_pod("no-data", namespace).status
    assert status.init_container_statuses[0].state.terminated.exit_code == 3
    main = status.container_statuses[0]
    assert main.state.waiting.reason == "PodInitializing" and main.container_id is None
    assert {c.type: c.status for c in status.conditions}["Initialized"] == "False"


def test_a_mount_over_the_venvs_directory_does_not_hide_the_venv(core, namespace):
    """A volume mounted at the first directory of this venv's path (as `/tmp` is when the repository is
    checked out under /tmp) rewrites the pod's own paths, never the host's PATH to the venv."""
    top = "/" + Path(sys.prefix).parts[1]
    code = "import sys, seqmodel; open('/dev/termination-log', 'w').write(sys.prefix)"
    spec = {"restartPolicy": "Never", "containers": [python(code, volumeMounts=[{"name": "v", "mountPath": top}])],
            "volumes": [{"name": "v", "emptyDir": {}}]}
    create_pod(core, namespace, "venv", spec)
    assert wait_for(lambda: finished(core, namespace, "venv"), 90, "the pod to finish") == "Succeeded"
    term = core.read_namespaced_pod("venv", namespace).status.container_statuses[0].state.terminated
    assert term.message == sys.prefix
