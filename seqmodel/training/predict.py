"""Test mode: what hparam `predict` asks of a trained model. `task`: the task's own predictions and test
metrics (predictions.tsv); `embeddings` and `variant_effect`: the encoder's embeddings of the test
windows, or scores of a VCF's SNVs (seqmodel.task.embed, seqmodel.task.variant_effect).

With `shards` > 1 the process predicts the rows of its `shard` alone (seqmodel.dataset.windows.
inference_slice). A shard with no rows writes its files with none, so that every shard of a sharded
job ends the same way, however many rows there are."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

from seqmodel.dataset.base import DataModuleBase
from seqmodel.dataset.datamodule import SeqDataModule
from seqmodel.dataset.windows import inference_slice
from seqmodel.errors import Stopped, UserError
from seqmodel.model.base import TokenHead
from seqmodel.outputs.run_dir import scalars
from seqmodel.task.base import SeqTask
from seqmodel.task.embed import Embedder, EmbeddingWriter
from seqmodel.task.predictions import PredictionWriter
from seqmodel.task.variant_effect import VariantEffectWriter, VariantScorer
from seqmodel.training.trainer import build_trainer

Outcome = tuple[pl.Trainer, dict[str, str], dict[str, float]]  # the trainer, output paths, metrics


def test(hparams: Mapping[str, Any], out: Path, task: SeqTask, datamodule: DataModuleBase) -> Outcome:
    kind = hparams["predict"]
    try:
        if kind == "embeddings":
            return _embeddings(hparams, out, task, datamodule)
        if kind == "variant_effect":
            return _variant_effect(hparams, out, task, datamodule)
        return _task(hparams, out, task, datamodule)
    except SIGTERMException:  # Lightning's SystemExit of status 0: the outputs are not whole
        raise Stopped(f"stopped by SIGTERM while testing (predict={kind}); no outputs were written") from None


def check_shard(hparams: Mapping[str, Any]) -> None:
    if hparams["shard"] >= hparams["shards"]:
        raise UserError(f"hparam 'shard': {hparams['shard']} must be below shards ({hparams['shards']})")
    if hparams["shards"] > 1 and hparams["mode"] != "test":
        raise UserError("hparam 'shards': test mode's predictions are sharded; a training run is one")


def _task(hparams: Mapping[str, Any], out: Path, task: SeqTask, datamodule: DataModuleBase) -> Outcome:
    writer = PredictionWriter(out / "predictions.tsv")
    trainer = build_trainer(hparams, out, [writer])
    if not datamodule.windows("test"):
        writer.write({}, [], task.prediction_columns)
        return trainer, {"predictions": str(writer.path)}, {}
    metrics = scalars(trainer.test(task, datamodule=datamodule, verbose=False)[0])
    return trainer, {"predictions": str(writer.path)}, metrics


def _embeddings(hparams: Mapping[str, Any], out: Path, task: SeqTask, datamodule: DataModuleBase) -> Outcome:
    positions = bool(hparams["embed_positions"])
    writer = EmbeddingWriter(out, datamodule.windows("test"), int(hparams["d_model"]), int(hparams["seq_len"]),
                             int(hparams["batch_size"]), positions)
    trainer = build_trainer(hparams, out, [writer])
    if writer.windows:
        trainer.predict(Embedder(task.encoder, datamodule.alphabet.none_idx, positions),
                        dataloaders=datamodule.test_dataloader(), return_predictions=False)
    else:
        writer.open(0)
        writer.finish()
    outputs = {key: str(path) for key, path in writer.paths.items()}
    return trainer, outputs, {"embeddings/windows": float(writer.written)}


def _variant_effect(hparams: Mapping[str, Any], out: Path, task: SeqTask, datamodule: DataModuleBase) -> Outcome:
    head = getattr(task, "head", None)
    if not isinstance(head, TokenHead):
        raise UserError(f"predict=variant_effect: scores come from a masked-token model (task ptmask); "
                        f"this is a {hparams['task']} model")
    if not isinstance(datamodule, SeqDataModule):
        raise UserError(f"predict=variant_effect: reads the genome of the genome data module, not of "
                        f"dataset {hparams['dataset']}")
    every = datamodule.variants()
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(every.skipped.items()) if n) or "none"
    if not len(every):
        raise UserError(f"variants: {every.path}: no SNVs to score (skipped: {skipped})")
    variants = every.take(inference_slice(len(every), int(hparams["shard"]), int(hparams["shards"])))
    print(f"scoring {len(variants)} of the {len(every)} SNVs of {every.path} (shard {hparams['shard']} of "
          f"{hparams['shards']}; skipped: {skipped})", file=sys.stderr, flush=True)
    alphabet = datamodule.alphabet
    writer = VariantEffectWriter(out / "variant_effects.tsv", [datamodule.genome.names[c] for c in variants.chrom],
                                 variants.pos, variants.ids, list(alphabet.decode(variants.ref)),
                                 list(alphabet.decode(variants.alt)))
    trainer = build_trainer(hparams, out, [writer])
    scorer = VariantScorer(task.encoder, head, alphabet.mask_idx, alphabet.complement_table,
                           both_strands=bool(hparams["rc_average"]))
    if len(variants):
        trainer.predict(scorer, dataloaders=datamodule.variant_dataloader(variants), return_predictions=False)
    else:
        writer.finish()
    metrics = {"variants/scored": float(len(variants)), "variants/skipped": float(sum(variants.skipped.values()))}
    return trainer, {"variant_effects": str(writer.path)}, metrics
