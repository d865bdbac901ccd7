"""The cluster's add-ons on the real node: CoreDNS (Deployment + the standard kube-dns Service), the
apiserver's access to kubelets, and the node's fake GPUs. Pure: objects as dicts, applied by bootstrap.
"""

from __future__ import annotations

from .nodeconfig import CLUSTER_DOMAIN, DNS_SERVICE_IP
from .pki import KUBELET_CLIENT_USER

NS = "kube-system"
DNS_PORT = 1053  # unprivileged inside the pod: CoreDNS runs as non-root with no capabilities
COREDNS_LABELS = {"k8s-app": "kube-dns"}

# Answers for the cluster domain (and reverse lookups of its addresses) only: no `forward`, so nothing
# a pod asks ever leaves the machine.
COREFILE = f"""\
.:{DNS_PORT} {{
    errors
    health :8080 {{
        lameduck 5s
    }}
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loop
    reload
}}
"""


def coredns_image(version: str) -> str:
    return f"localhost/coredns:{version}"


def kubelet_api_access() -> list[dict]:
    """The apiserver's client certificate may use the kubelet API (logs, exec), and nothing else."""
    return [{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": KUBELET_CLIENT_USER},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:kubelet-api-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": KUBELET_CLIENT_USER}],
    }]


def coredns(version: str) -> list[dict]:
    """CoreDNS as upstream ships it, minus `forward`, listening on an unprivileged port."""
    meta = {"name": "coredns", "namespace": NS}
    pod_security = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"}}
    container_security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                          "capabilities": {"drop": ["ALL"]}}
    probe = {"periodSeconds": 2, "timeoutSeconds": 1, "failureThreshold": 5}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
         "rules": [
             {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": NS}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta), "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**meta, "labels": COREDNS_LABELS},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": COREDNS_LABELS},
             "template": {
                 "metadata": {"labels": COREDNS_LABELS},
                 "spec": {
                     "serviceAccountName": "coredns",
                     "priorityClassName": "system-cluster-critical",
                     "dnsPolicy": "Default",
                     "securityContext": pod_security,
                     "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                     "nodeSelector": {"type": "container"},
                     "containers": [{
                         "name": "coredns",
                         "image": coredns_image(version),
                         "imagePullPolicy": "Never",  # built here; there is no registry to pull from
                         "args": ["-conf", "/etc/coredns/Corefile"],
                         "ports": [{"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
                                   {"name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP"}],
                         "resources": {"requests": {"cpu": "50m", "memory": "40Mi"}, "limits": {"memory": "170Mi"}},
                         "securityContext": container_security,
                         "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, **probe},
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, **probe},
                         "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                     }],
                     "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": NS,
                      "labels": {**COREDNS_LABELS, "kubernetes.io/name": "CoreDNS"}},
         "spec": {"selector": COREDNS_LABELS, "clusterIP": DNS_SERVICE_IP,
                  "ports": [{"name": "dns", "port": 53, "targetPort": DNS_PORT, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "targetPort": DNS_PORT, "protocol": "TCP"}]}},
    ]


def gpu_capacity(gpus: int) -> dict:
    """Node status patch: an extended resource, so GPU-requesting pods schedule (they run on the CPU)."""
    return {"status": {"capacity": {"nvidia.com/gpu": str(gpus)}}}
