"""``rewardhedge audit``: which preference labels look wrong to an ensemble that never
trained on them, and (with --action drop, flip or soft) the cleaned pairs and a model
retrained on them. Definitions in docs/audit.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from rewardhedge.cli.common import (
    CacheOptions,
    ConfigFileOpt,
    PairReadOptions,
    beside,
    check_outputs,
    err,
    out_print,
    read_pairs,
    stages,
)
from rewardhedge.cli.flags import Flag, FlagSet, with_flags
from rewardhedge.cli.train import (
    TRAIN_FLAGS,
    check_calibration_pairs,
    check_encoder_path,
    check_heads_memory,
    train_model,
)
from rewardhedge.data import write_jsonl_atomic
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.audit import AuditConfig, AuditResult, audit_pairs, check_audit_size
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.evaluate.audit import AuditAction, pair_record

AUDIT_FLAGS = FlagSet(
    AuditConfig,
    (Flag("folds"), Flag("seed", "fold_seed"), Flag("threshold"), Flag("action")),
)
"""The ``AuditConfig`` fields ``audit`` takes as flags."""

SHOWN_SUSPECTS = 5
"""Most suspicious pairs named in the terminal summary."""


@with_flags(flags=TRAIN_FLAGS, audit_flags=AUDIT_FLAGS, read=PairReadOptions, cache=CacheOptions)
def audit(
    data: Annotated[Path, typer.Option(help="Preference pairs to audit.")],
    out: Annotated[
        Path,
        typer.Option(help="JSONL to write: per pair its held-out votes, margin and suspicion."),
    ],
    model: Annotated[
        Path | None,
        typer.Option(
            help="Model folder whose ensemble settings the folds train (its own in-sample "
            "votes are reported too); else --config and the train flags."
        ),
    ] = None,
    config: ConfigFileOpt = None,
    clean_out: Annotated[
        Path | None, typer.Option(help="Write the pairs after --action drop, flip or soft here.")
    ] = None,
    retrain: Annotated[
        Path | None,
        typer.Option(
            help="Train a model on the pairs after --action drop, flip or soft; save it here."
        ),
    ] = None,
    *,
    flags: dict[str, Any],
    audit_flags: dict[str, Any],
    read: PairReadOptions,
    cache: CacheOptions,
) -> None:
    """Cross-fitted mislabel audit: each pair is scored by an ensemble trained on the
    other folds (split by prompt); pairs whose held-out members find the other label
    likelier than --threshold are flagged, and dropped or flipped with --action."""
    rejects = beside(out, out.name + ".rejects.jsonl")
    files = {"--out": out, "--clean-out": clean_out} | read.rejects_output(rejects)
    check_outputs(
        files=files,
        models={"--retrain": retrain},
        folders={"--cache-dir": cache.cache_dir},
        inputs={"--data": data, "--model": model, "--config": config},
    )
    if model is not None and config is not None:
        raise ConfigError(
            "--model and --config both give the ensemble's settings; pass one of them."
        )
    settings = AUDIT_FLAGS.config(None, audit_flags)
    if settings.action is AuditAction.FLAG:
        given = [name for name, v in (("--clean-out", clean_out), ("--retrain", retrain)) if v]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} need --action drop, flip or soft; with --action flag no "
                "pair changes."
            )
    rm = None if model is None else EnsembleRewardModel.load(model, **cache.kwargs)
    cfg = TRAIN_FLAGS.config(config, flags, base=None if rm is None else rm.config)
    check_encoder_path(cfg.encoder)
    check_heads_memory(cfg)
    pairs = read_pairs(data, read, rejects)
    check_audit_size(pairs, settings.folds, "--folds")
    if retrain is not None:
        check_calibration_pairs(len(pairs), cfg.uncertainty.calibration_folds)
    encoder = rm.encoder if rm is not None and rm.config.encoder == cfg.encoder else None

    err.print(
        f"Auditing {len(pairs)} pairs: {settings.folds} folds by prompt, K={cfg.n_members} "
        f"{cfg.head.kind.value} heads on [bold]{cfg.encoder.kind.value}[/] …"
    )
    with stages() as stage:
        advance = stage("cross-fit folds", settings.folds)
        result = audit_pairs(
            pairs,
            cfg,
            settings,
            model=rm,
            encoder=encoder,
            progress=True,
            on_fold=lambda done, total: advance(1),
            **cache.kwargs,
        )
    n = write_jsonl_atomic(out, result.rows())
    err.print(f"Wrote {n} audit rows → [bold]{escape(str(out))}[/]")
    out_print(summary_text(result))
    if settings.action is AuditAction.FLAG:
        return
    cleaned = result.cleaned()
    if clean_out is not None:
        n = write_jsonl_atomic(clean_out, (pair_record(p) for p in cleaned))
        err.print(f"Wrote {n} cleaned pairs → [bold]{escape(str(clean_out))}[/]")
    if retrain is not None:
        check_calibration_pairs(len(cleaned), cfg.uncertainty.calibration_folds)
        train_model(cleaned, cfg, retrain, cache=cache)


def summary_text(result: AuditResult) -> str:
    """The terminal summary: how many pairs were flagged and the most suspicious ones."""
    s = result.summary()
    cfg = result.config
    lines = [
        f"flagged {s['n_flagged']} of {s['n_pairs']} pairs ({s['share_flagged']:.1%}) at "
        f"suspicion > {cfg.threshold:g}; action {cfg.action.value} → {s['n_clean']} pairs",
        f"held-out agreement with the labels {s['held_out_agreement']:.3f} "
        f"({s['n_members']} members, {cfg.folds} folds)",
    ]
    if "in_sample_agreement" in s:
        lines.append(f"in-sample agreement (--model) {s['in_sample_agreement']:.3f}")
    order = result.suspicion.argsort()[::-1][:SHOWN_SUSPECTS]
    for i in order:
        strength = result.held_out
        lines.append(
            f"  {result.pairs[i].id}: suspicion {result.suspicion[i]:.3f}, votes "
            f"{strength.vote_share[i]:.2f}, margin {strength.margin_mean[i]:+.3f} "
            f"± {strength.margin_std[i]:.3f}"
        )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``audit`` to the main app."""
    app.command()(audit)
