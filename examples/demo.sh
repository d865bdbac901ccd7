#!/usr/bin/env bash
# `make demo`: the Kubernetes path, end to end, on the local cluster (hack/README.md).
#   1. start the local cluster (a no-op when it is up);
#   2. install the SeqTrainingJob CRD;
#   3. create the data and output claims and put the sample genome on the data claim;
#   4. run the operator on this machine (unless an earlier demo's is still running);
#   5-7. kubectl apply manifests/examples/job.yaml (pretraining), then inference.yaml (predictions from
#        its checkpoint), showing each phase change and the trainer's progress;
#   8. print the output paths, metrics and predictions.
# Earlier demo jobs are deleted first; their outputs stay, and the new runs get the next versions.
# The cluster stays up at the end (`make cluster-down` stops it); the operator started here is stopped.
# The library alone, without Kubernetes: bash examples/local_pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CLUSTER=${SEQMODEL_CLUSTER_DIR:-.cluster}
case $CLUSTER in /*) KUBECONFIG=$CLUSTER/kubeconfig ;; *) KUBECONFIG=$PWD/$CLUSTER/kubeconfig ;; esac
export KUBECONFIG
VOLUMES=$CLUSTER/volumes
OPERATOR_LOG=$CLUSTER/logs/operator.log
OPERATOR_PID=$CLUSTER/operator.pid
TIMEOUT=${DEMO_TIMEOUT:-1800}  # seconds per job
JOBS=(pretrain-small pretrain-small-test)
t0=$SECONDS

say() { printf '== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
clock() { local s=$((SECONDS - t0)); printf '%02d:%02d' $((s / 60)) $((s % 60)); }

command -v kubectl >/dev/null || die "kubectl not found on PATH: install kubectl (any version within one minor of v1.34)"

# --- 1. cluster ----------------------------------------------------------------------------------------
say "local cluster ($CLUSTER)"
"$PY" hack/cluster.py --dir "$CLUSTER" up

# --- 2. CRD --------------------------------------------------------------------------------------------
say "CRD: kubectl apply -f manifests/crd/"
kubectl apply -f manifests/crd/
kubectl wait --for condition=Established --timeout=60s -f manifests/crd/ >/dev/null

# --- 3. claims and data ----------------------------------------------------------------------------------
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

# --- 4. operator -----------------------------------------------------------------------------------------
alive_operator() {  # the pid in $OPERATOR_PID when it is an operator started after this cluster's etcd
  local pid started etcd_started
  pid=$(cat "$OPERATOR_PID" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q seqmodel_operator || return 1
  started=$(awk '{print $22}' "/proc/$pid/stat")  # clock ticks since boot, as in state.json
  etcd_started=$("$PY" -c 'import json, sys; print(next(p["start_time"] for p in json.load(open(sys.argv[1]))["procs"]
if p["name"] == "etcd"))' "$CLUSTER/state.json")
  if [ "$started" -lt "$etcd_started" ]; then  # left over from an earlier cluster: it talks to nothing
    echo "stopping operator $pid, left over from an earlier cluster"
    kill "$pid" 2>/dev/null || true
    return 1
  fi
  echo "$pid"
}

liveness_of() {  # the --liveness URL on a running operator's command line
  tr '\0' '\n' < "/proc/$1/cmdline" | grep -A1 -x -- --liveness | tail -1
}

answers() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; }

STARTED_OPERATOR=""
stop_operator() {
  [ -n "$STARTED_OPERATOR" ] || return 0
  kill "$STARTED_OPERATOR" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$STARTED_OPERATOR" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$STARTED_OPERATOR" 2>/dev/null || true
  rm -f "$OPERATOR_PID"
  echo "(stopped the operator this demo started; its log: $OPERATOR_LOG)"
}
trap stop_operator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if pid=$(alive_operator); then
  say "operator: already running (pid $pid, from an earlier demo; log $OPERATOR_LOG)"
  url=$(liveness_of "$pid")
else
  port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url=http://127.0.0.1:$port/healthz
  say "operator: python -m seqmodel_operator --all-namespaces on this machine (log $OPERATOR_LOG)"
  mkdir -p "$(dirname "$OPERATOR_LOG")"
  "$PY" -m seqmodel_operator --all-namespaces --liveness "$url" --log-format json > "$OPERATOR_LOG" 2>&1 &
  STARTED_OPERATOR=$!
  echo "$STARTED_OPERATOR" > "$OPERATOR_PID"
fi
for _ in $(seq 120); do
  answers "$url" && break
  if [ -n "$STARTED_OPERATOR" ] && ! kill -0 "$STARTED_OPERATOR" 2>/dev/null; then
    tail -5 "$OPERATOR_LOG" >&2
    die "the operator exited at start; its log: $OPERATOR_LOG"
  fi
  sleep 0.5
done
answers "$url" || die "the operator's liveness endpoint $url does not answer; its log: $OPERATOR_LOG"
echo "liveness $url answers"

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

pod_log() {  # the trainer's log of the job's current child Job (the process node writes it; no kubectl logs)
  local job
  job=$(field "$1" '{.status.replicates[0].job}')
  [ -z "$job" ] || ls -t "$CLUSTER"/logs/pods/default_"$job"-*_*/trainer/*.log 2>/dev/null | head -1 || true
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
    if [ -n "$STARTED_OPERATOR" ] && ! kill -0 "$STARTED_OPERATOR" 2>/dev/null; then
      die "the operator stopped; its log: $OPERATOR_LOG"
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
   make demo            # again: new versions, earlier outputs stay
   make cluster-down    # stop the cluster (outputs in $VOLUMES stay)
EOF
