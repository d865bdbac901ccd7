#!/usr/bin/env bash
# The library's own pipeline on the sample data (what `make demo` runs until the operator exists):
# pretrain a small encoder, fine-tune it on the planted-motif labels, then test it and write predictions.
# Small hparams: a few minutes on 2 CPU cores. Every run writes a fresh
# out/demo/<canonical name>/version_<n>, so running the demo again never overwrites an earlier one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROOT=${DEMO_ROOT:-out/demo}
unset SEQMODEL_DATA_ROOT  # the repository's data/ is the data root

next_version() {  # $ROOT/<canonical name of the args>/version_<n>, allocated race-free
  "$PY" -m seqmodel.layout "$ROOT" "$@"
}

show() {  # the output paths and the final metrics of a run
  echo "== $1: $2"
  "$PY" -c 'import json, sys; m = json.load(open(sys.argv[1]))["metrics"]
print("\n".join(f"   {k} = {v:.4f}" for k, v in sorted(m.items()) if v is not None))' "$2/metrics.json"
}

# Dataset paths resolve against data_root (default data/): the defaults are the sample genome in data/genome/.
model=(--config=model/small --seq_len=200 --batch_size=32 --accelerator=cpu --log_every_n_steps=20)
labels=(--config=task/finetune)  # the preset: task=finetune and the labelled intervals in data/genome/

pretraining=("${model[@]}" --lr=2e-3 --warmup_steps=50)
pretrain=$(next_version "${pretraining[@]}")
"$PY" -m seqmodel.run "${pretraining[@]}" --max_steps=300 --val_check_interval=100 --limit_val_batches=10 \
  --default_root_dir="$pretrain"
show "pretraining (masked accuracy vs the base-frequency baseline)" "$pretrain"

finetuning=("${labels[@]}" "${model[@]}" --lr=2e-3 --warmup_steps=20)
finetune=$(next_version "${finetuning[@]}")
"$PY" -m seqmodel.run "${finetuning[@]}" --max_steps=200 --val_check_interval=100 \
  --load_encoder_from_checkpoint="$pretrain/checkpoints/last.ckpt" --default_root_dir="$finetune"
show "fine-tuning from the pretrained encoder (per-label AUROC)" "$finetune"

test=$(next_version "${finetuning[@]}")  # predictions: the next version of the fine-tuned run's name
"$PY" -m seqmodel.run --mode=test "${labels[@]}" --accelerator=cpu \
  --load_checkpoint_path="$finetune/checkpoints/best.ckpt" --default_root_dir="$test"
show "test" "$test"
echo "== predictions: $test/predictions.tsv ($(( $(wc -l < "$test/predictions.tsv") - 1 )) intervals)"
head -3 "$test/predictions.tsv"
echo "== TensorBoard: .venv/bin/tensorboard --logdir $ROOT"
