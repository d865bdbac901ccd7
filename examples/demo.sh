#!/usr/bin/env bash
# `make demo`: the Kubernetes path, end to end, on the local cluster (hack/README.md).
#   1. start the local cluster (a no-op when it is up);
#   2. build the trainer and operator images from docker/*.Dockerfile (cached) and import them into node-0;
#   3. install the operator with Helm (charts/seqmodel-operator, namespace seqmodel-system): it runs in the
#      cluster, on node-0, from its image, and its training pods run there from the trainer image;
#   4. create the data and output claims and put the sample genome on the data claim;
#   5-7. kubectl apply manifests/examples/job.yaml (pretraining), then inference.yaml (predictions from
#        its checkpoint), showing each phase change and the trainer's progress;
#   8. print the output paths, metrics and predictions.
# Earlier demo jobs are deleted first; their outputs stay, and the new runs get the next versions.
# The cluster and the operator stay up at the end (`make cluster-down` stops both).
# The library alone, without Kubernetes: bash examples/local_pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CLUSTER=${SEQMODEL_CLUSTER_DIR:-.cluster}
case $CLUSTER in /*) KUBECONFIG=$CLUSTER/kubeconfig ;; *) KUBECONFIG=$PWD/$CLUSTER/kubeconfig ;; esac
export KUBECONFIG
VOLUMES=$CLUSTER/volumes
RELEASE=seqmodel-operator  # also the name of its Deployment
OPERATOR_NS=seqmodel-system
TIMEOUT=${DEMO_TIMEOUT:-1800}  # seconds per job
JOBS=(pretrain-small pretrain-small-test)
t0=$SECONDS

say() { printf '== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
clock() { local s=$((SECONDS - t0)); printf '%02d:%02d' $((s / 60)) $((s % 60)); }

command -v kubectl >/dev/null || die "kubectl not found on PATH: install kubectl (any version within one minor of v1.34)"
HELM=$(bash -c 'source hack/versions.sh && echo "$SEQMODEL_K8S_BIN/helm"')
[ -x "$HELM" ] || die "helm not found at $HELM: run make binaries"
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. cluster ----------------------------------------------------------------------------------------
say "local cluster ($CLUSTER)"
"$PY" hack/cluster.py --dir "$CLUSTER" up

# --- 2. images ------------------------------------------------------------------------------------------
# One command builds (docker/*.Dockerfile with buildah; cached) and imports what it built, so the refs the
# chart gets below are exactly the images node-0 has.
say "images: hack/images.py import --dir $CLUSTER (the first build takes about 5 minutes, the first import into a cluster about 2: 6 GB of torch)"
"$PY" hack/images.py import --dir "$CLUSTER" > "$CLUSTER/images.txt"
OPERATOR_IMAGE=$(sed -n 's/^operator=//p' "$CLUSTER/images.txt")
TRAINER_IMAGE=$(sed -n 's/^trainer=//p' "$CLUSTER/images.txt")
printf '   %s\n   %s\n' "$OPERATOR_IMAGE" "$TRAINER_IMAGE"

# --- 3. operator -----------------------------------------------------------------------------------------
say "CRDs: kubectl apply --server-side -f manifests/crd/ (helm installs crds/ once and never upgrades them)"
kubectl apply --server-side -f manifests/crd/
kubectl wait --for condition=Established --timeout=60s -f manifests/crd/ >/dev/null
say "operator: helm upgrade --install $RELEASE charts/seqmodel-operator -n $OPERATOR_NS (in the cluster, on node-0)"
# pullPolicy Never: the images exist only in node-0's containerd (there is no registry to pull from).
"$HELM" upgrade --install "$RELEASE" charts/seqmodel-operator --namespace "$OPERATOR_NS" --create-namespace \
  --wait --timeout 300s --values - <<EOF
image: {repository: ${OPERATOR_IMAGE%:*}, tag: ${OPERATOR_IMAGE##*:}, pullPolicy: Never}
trainerImage: {repository: ${TRAINER_IMAGE%:*}, tag: ${TRAINER_IMAGE##*:}, pullPolicy: Never}
EOF
kubectl -n "$OPERATOR_NS" get pods -o wide -l "app.kubernetes.io/instance=$RELEASE"

# --- 4. claims and data ----------------------------------------------------------------------------------
say "claims seqmodel-data and seqmodel-output (the local-path provisioner maps <claim> to $VOLUMES/<claim>)"
kubectl apply -f - <<'EOF'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: seqmodel-data, namespace: default}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: seqmodel-output, namespace: default}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Gi}}}
EOF
mkdir -p "$VOLUMES/seqmodel-data/data/genome"
cp -R data/genome/. "$VOLUMES/seqmodel-data/data/genome/"
echo "data/genome/ -> $VOLUMES/seqmodel-data/data/genome/"

# --- 5. earlier runs -------------------------------------------------------------------------------------
say "deleting earlier demo jobs (their outputs stay; the new runs get the next versions)"
kubectl delete stj "${JOBS[@]}" --ignore-not-found --wait

# --- 6, 7. the jobs --------------------------------------------------------------------------------------
field() {  # field NAME JSONPATH
  kubectl get stj "$1" -o jsonpath="$2" 2>/dev/null || true
}

progress() {  # the trainer's newest metrics.csv values: a train line, and a val line after each validation
  local name=$1 output=$2 csv
  csv=$(ls -t "$VOLUMES/seqmodel-output/$output"/csv/version_*/metrics.csv 2>/dev/null | head -1 || true)
  [ -n "$output" ] && [ -n "$csv" ] || return 0
  "$PY" - "$csv" "$(field "$name" '{.spec.hparams.max_steps}')" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def newest(prefix):
    for row in reversed(rows):
        values = {k: v for k, v in row.items() if k.startswith(prefix) and v}
        if values:
            text = "  ".join(f"{k} {float(v):.3f}" for k, v in sorted(values.items()))
            if prefix == "test/":
                return text
            return f"step {int(row['step']) + 1}{'/' + sys.argv[2] if sys.argv[2] else ''}  {text}"
for prefix in ("train/", "val/", "test/"):
    line = newest(prefix)
    if line:
        print(line)
EOF
}

pod_log() {  # how to read the trainer's log of the job's current child Job, once its pod exists
  local job pod
  job=$(field "$1" '{.status.replicates[0].job}')
  [ -n "$job" ] || return 0
  pod=$(kubectl get pods -l "job-name=$job" -o jsonpath='{.items[0].metadata.name}' 2>/dev/null) || return 0
  [ -z "$pod" ] || echo "kubectl logs $pod -c trainer"
}

follow() {  # print each phase change and, every 15 s, the trainer's progress; return when it finishes
  local name=$1 since=$SECONDS shown="" printed="" log="" next_progress=$((SECONDS + 15))
  local state phase output why line now
  while :; do
    state=$(field "$name" '{.status.phase}{"\t"}{.status.output}{"\t"}{.status.message}{.status.conditions[?(@.reason=="WaitingForCheckpoint")].message}')
    IFS=$'\t' read -r phase output why <<< "$state" || true
    if [ "$phase|$why" != "$shown" ]; then
      printf '  %s  %s: %s%s\n' "$(clock)" "$name" "${phase:-(no status yet)}" "${why:+ ($why)}"
      shown="$phase|$why"
    fi
    case $phase in
      Succeeded) return 0 ;;
      Failed) die "$name failed: $(field "$name" '{.status.message}')${log:+ (trainer log: $log)}" ;;
    esac
    if [ "$phase" = Running ] && [ -z "$log" ]; then
      log=$(pod_log "$name")
      [ -z "$log" ] || printf '  %s    trainer log: %s\n' "$(clock)" "$log"
    fi
    if [ "$phase" = Running ] && [ $SECONDS -ge $next_progress ]; then
      now=$(progress "$name" "$output") || now=""  # a half-written row: next time
      while IFS= read -r line; do  # each line once: a val line only after a new validation
        [ -z "$line" ] || grep -qxF -- "$line" <<< "$printed" || printf '  %s    %s\n' "$(clock)" "$line"
      done <<< "$now"
      printed=$now
      next_progress=$((SECONDS + 15))
    fi
    [ $((SECONDS - since)) -lt "$TIMEOUT" ] || die "$name did not finish in $TIMEOUT s (DEMO_TIMEOUT); kubectl describe stj $name"
    sleep 3
  done
}

say "pretraining: kubectl apply -f manifests/examples/job.yaml"
kubectl apply -f manifests/examples/job.yaml
follow pretrain-small

say "predictions from its checkpoint: kubectl apply -f manifests/examples/inference.yaml"
kubectl apply -f manifests/examples/inference.yaml
follow pretrain-small-test

# --- 8. results ------------------------------------------------------------------------------------------
say "outputs (<claim>/<root>/<canonical name>/version_<n>; the claim seqmodel-output is $VOLUMES/seqmodel-output)"
for name in "${JOBS[@]}"; do
  printf '   %-20s %s\n' "$name" "$VOLUMES/seqmodel-output/$(field "$name" '{.status.output}')"
done
say "metrics (status.metrics, from each run's termination message)"
for name in "${JOBS[@]}"; do
  echo "   $name:"
  kubectl get stj "$name" -o json | "$PY" -c 'import json, sys
metrics = json.load(sys.stdin)["status"].get("metrics") or {}
print("\n".join(f"      {k} = {v:.4f}" for k, v in sorted(metrics.items()) if v is not None))'
done
predictions=$VOLUMES/seqmodel-output/$(field pretrain-small-test '{.status.replicates[0].predictions}')
say "predictions: $predictions ($(( $(wc -l < "$predictions") - 1 )) windows)"
head -4 "$predictions"
say "kubectl get stj"
kubectl get stj
say "done in $(clock); the cluster is still up. To look further:"
cat <<EOF
   export KUBECONFIG=$KUBECONFIG
   kubectl get stj -o wide; kubectl describe stj pretrain-small; kubectl explain stj.spec
   ls $VOLUMES/seqmodel-output/runs/
   kubectl -n $OPERATOR_NS logs deployment/$RELEASE    # the operator's log
   make demo            # again: new versions, earlier outputs stay
   make cluster-down    # stop the cluster and its operator (outputs in $VOLUMES stay)
EOF
