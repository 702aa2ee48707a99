"""``rewardhedge overopt`` and ``demo``: the overoptimisation lab on the sandbox or on
your pools, with frozen or fine-tuned proxies, and the embedded default run.

The flags come in typed groups: the sandbox's sizes (``SandboxConfig`` fields), what
the lab trains (:class:`LabModels`), your pools and how they are labelled
(:class:`PoolOptions`, ``PoolSplit``/``LabelModel`` fields), fine-tuned proxies
(:class:`FinetuneProxyOptions`) and how the pools file is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from rewardhedge.cli.common import ReadOptions, check_outputs, err, flag_errors, out, stages
from rewardhedge.cli.flags import Flag, FlagSet, config_from, with_flags
from rewardhedge.config import MemberNormKind
from rewardhedge.data import load_pools, write_json_atomic
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.data.sandbox.export import export_sandbox
from rewardhedge.errors import ConfigError
from rewardhedge.report.terminal_lab import lab_tables

LAB_SANDBOX_FLAGS = FlagSet(
    SandboxConfig,
    (
        Flag("train_prompts"),
        Flag("test_prompts"),
        Flag("pool_prompts", "prompts"),
        Flag("pool_size", decls=("--n",)),
    ),
)
"""The sandbox's sizes that ``overopt`` and ``demo`` take as flags."""


@dataclass(frozen=True)
class LabModels:
    """What the lab trains for every label seed."""

    seeds: int = 5
    """Label and training seeds (more: tighter CIs; cheap once the texts are encoded)."""
    members: int = 5
    """Ensemble size K of every ensemble."""
    options: str | None = field(default=None, metadata={"flag": ("--options",)})
    """Ensembles to compare with the single model, comma-separated: bootstrap (seeds +
    resamples), subspace (a random half of the features each), views (one encoder view
    each); with --finetune: multihead, lora, independent, mc_dropout. None: the three
    frozen options, or multihead with --finetune."""
    member_norm: str = "standardize"
    """standardize, center or none: members put on one footing before every aggregation
    but the mean."""
    encoder: str = "minilm"
    """minilm, or hashing (a fast smoke run)."""
    cache_dir: Path | None = None
    """Embedding cache folder (default: the user cache folder; demo: OUT/cache)."""


@dataclass(frozen=True)
class PoolOptions:
    """Your pools with gold, in place of the sandbox (see docs/lab-on-pools.md)."""

    pools: Path | None = None
    """Best-of-n pools with gold ({prompt, candidates[], gold[]}, null for an unknown gold
    value) in place of the sandbox."""
    gold_model: str | None = None
    """With --pools: score the candidates with this model (a rewardhedge model folder or a
    reward server URL) and use its mean reward as the gold; cached next to the pools file."""
    gold_token: str | None = None
    """Bearer token for a --gold-model server."""
    data_seed: int = 0
    """Seed of the sandbox texts, or of the prompt split of --pools."""
    flip_rate: float = 0.25
    """Share of training labels flipped."""
    temperature: float = field(
        default=1.0, metadata={"flag": ("--temperature", "--label-temperature")}
    )
    """Bradley-Terry label temperature, in the units --label-scale gives the gold."""


def _pool_split_flags() -> FlagSet:
    from rewardhedge.lab.data import PoolSplit

    return FlagSet(
        PoolSplit,
        (Flag("train_fraction"), Flag("pairs_per_prompt"), Flag("labels.scale", "label_scale")),
    )


@dataclass(frozen=True)
class FinetuneProxyOptions:
    """Fine-tuned proxies in place of heads on the frozen encoder."""

    finetune: str | None = field(default=None, metadata={"flag": ("--finetune",)})
    """Fine-tune the proxies from this local model folder, or `minilm`; see
    docs/lab-on-pools.md."""
    finetune_config: Path | None = None
    """JSON fine-tuning settings for the --finetune proxies (the keys of `finetune
    --config`: epochs, lr, max_length, train_top_layers, …)."""

    def template(self) -> Any:
        """The fine-tuning template, or None (frozen proxies)."""
        if self.finetune is None and self.finetune_config is None:
            return None
        from rewardhedge.cli.finetune import finetune_config

        cfg = finetune_config(self.finetune_config, {}, self.finetune)
        if not cfg.backbone:
            raise ConfigError(
                f"--finetune-config: {self.finetune_config} names no backbone; add --finetune."
            )
        if not Path(cfg.backbone).is_dir():
            raise ConfigError(
                f"--finetune: backbone {cfg.backbone!r} is not a local folder; nothing is "
                "downloaded."
            )
        return cfg


def lab_config(models: LabModels, sandbox: SandboxConfig, finetune: Any = None, **extra: Any):
    """The LabConfig of the flags, each refused value named by its flag."""
    from rewardhedge.lab.options import lab_encoder_config
    from rewardhedge.lab.overopt import LabConfig

    if models.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {models.seeds}")
    names = models.options
    options = None if names is None else tuple(o.strip() for o in names.split(",") if o.strip())
    norm = MemberNormKind.parse(models.member_norm, "--member-norm")
    try:
        enc = lab_encoder_config(models.encoder)
    except ConfigError as exc:
        raise ConfigError(f"--encoder: {exc}") from exc
    try:
        return LabConfig(
            sandbox=sandbox, seeds=tuple(range(models.seeds)), members=models.members,
            options=options, member_norm=norm, encoder=enc, finetune=finetune, **extra,
        )  # fmt: skip
    except ConfigError as exc:
        if "option" in str(exc):  # the options checks: name the flag
            raise ConfigError(f"--options: {exc}") from exc
        if finetune is not None:  # a fine-tuning setting one of the proxies cannot use
            raise ConfigError(f"--finetune-config: {exc}") from exc
        raise


def _model_gold(rows, pools: Path, source: str, out_dir: Path, cache_dir, token):
    """The pools with gold from ``--gold-model`` (progress while scoring; cached)."""
    from rewardhedge.lab.gold_model import with_model_gold

    total = sum(len(r.candidates) for r in rows)
    with stages() as stage:
        advance = stage("score gold", total)
        seen = 0

        def progress(done: int, _total: int) -> None:
            nonlocal seen
            advance(done - seen)
            seen = done

        rows, info = with_model_gold(
            rows, pools, source, out_dir, cache_dir=cache_dir, token=token, on_progress=progress
        )
    how = "read from the cache" if info["cached"] else "scored"
    err.print(f"Gold from [bold]{escape(source)}[/]: {how} ({escape(info['cache_file'])})")
    return rows, info


def _pool_split(pool: PoolOptions, values: dict[str, Any]):
    """The PoolSplit of ``--pools``: the flags given, the label flags, the data seed;
    a refused value is named by its flag."""
    flags = _pool_split_flags()
    labels = {"labels.temperature": pool.temperature, "labels.flip_rate": pool.flip_rate}
    names = {f.path: f.flag for f in flags.flags} | {
        "labels.temperature": "--label-temperature", "labels.flip_rate": "--flip-rate",
        "seed": "--data-seed",
    }  # fmt: skip
    return config_from(flags.cls, None, values | labels | {"seed": pool.data_seed}, names)


def _pool_data(pool: PoolOptions, split: Any, read: ReadOptions, out_dir: Path,
               cache_dir: Path | None):  # fmt: skip
    """The lab data of ``--pools`` (gold from ``--gold-model`` when given)."""
    from rewardhedge.lab.data import from_pools

    with flag_errors():
        rows, load = load_pools(
            pool.pools, missing_gold=True, **read.kwargs(out_dir / "rejects.jsonl")
        )
    err.print(f"[bold]{escape(str(pool.pools))}[/]: {load.n_kept} pools kept of {load.n_read} read")
    gold_info = None
    if pool.gold_model is not None:
        rows, gold_info = _model_gold(
            rows, pool.pools, pool.gold_model, out_dir, cache_dir, pool.gold_token
        )
    data = from_pools(rows, split, source=str(pool.pools))
    if gold_info is not None:
        data = replace(data, summary=data.summary | {"gold": gold_info})
    return data


def _print_summary(result: dict[str, Any]) -> None:
    for shown in lab_tables(result):
        out.print(shown)


def _run_lab_cli(
    cfg, cache_dir: Path | None, out_dir: Path, data: Any = None
) -> tuple[dict[str, Any], list[Any]]:
    from rewardhedge.lab.overopt import run_lab

    reads = (
        f"encoder [bold]{cfg.encoder.kind}[/] (views {', '.join(cfg.encoder.views)})"
        if cfg.finetune is None
        else f"fine-tuned from [bold]{escape(cfg.finetune.backbone)}[/]"
    )
    models = (
        f"{len(cfg.seeds)} seeds × (single + ensembles of {cfg.members}: "
        f"{', '.join(cfg.options)}); {reads}"
    )
    if data is None:
        err.print(
            f"Sandbox: {cfg.sandbox.train_prompts} training comparisons, "
            f"{cfg.sandbox.pool_prompts} pools of {cfg.sandbox.pool_size}; {models}"
        )
    else:
        d = data.summary
        err.print(
            f"Pools: {d['n_train_prompts']} training prompts → {d['n_train_comparisons']} "
            f"comparisons; {d['n_test_prompts']} test pools of {d['test_pool_sizes']['min']}–"
            f"{d['test_pool_sizes']['max']} candidates ({d['n_candidates_missing_gold']} "
            f"candidates without gold left out, {d['n_pools_unusable']} pools unusable); {models}"
        )
    with stages() as stage:
        result, runs = run_lab(cfg, data=data, cache_dir=cache_dir, stage=stage, progress=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "overopt.json", result)
    return result, runs


@with_flags(
    sandbox=LAB_SANDBOX_FLAGS, models=LabModels, pool=PoolOptions, pool_split=_pool_split_flags(),
    proxies=FinetuneProxyOptions, read=ReadOptions,
)  # fmt: skip
def overopt(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for overopt.json (and the report).")
    ] = Path("rewardhedge-overopt"),
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Also write report.html.")
    ] = True,
    *,
    sandbox: dict[str, Any],
    models: LabModels,
    pool: PoolOptions,
    pool_split: dict[str, Any],
    proxies: FinetuneProxyOptions,
    read: ReadOptions,
) -> None:
    """The overoptimisation lab: gold → noisy labels → proxies → best-of-n; gold and proxy vs KL.
    On the sandbox by default, on your own pools with gold with --pools."""
    t0 = time.perf_counter()
    written = ("overopt.json", "report.html") if report else ("overopt.json",)
    inputs = {"--pools": pool.pools, "--finetune-config": proxies.finetune_config}
    for flag, value in (("--finetune", proxies.finetune), ("--gold-model", pool.gold_model)):
        if value and Path(value).exists():  # a local folder (not `minilm`, not a URL)
            inputs[flag] = Path(value)
    files = {f"--out's {name}": out_dir / name for name in written}
    check_outputs(
        folders={"--out": out_dir, "--cache-dir": models.cache_dir},
        files=files | read.rejects_output(out_dir / "rejects.jsonl"),
        inputs=inputs,
    )
    if pool.gold_model is not None and pool.pools is None:
        raise ConfigError("--gold-model labels the pools of --pools; give --pools too.")
    split = None if pool.pools is None else _pool_split(pool, pool_split)
    labels = {"seed": pool.data_seed, "flip_rate": pool.flip_rate, "temperature": pool.temperature}
    box = LAB_SANDBOX_FLAGS.config(None, sandbox | (labels if split is None else {}))
    cfg = lab_config(models, box, proxies.template(), pools=split)
    data = None if split is None else _pool_data(pool, split, read, out_dir, models.cache_dir)
    result, _ = _run_lab_cli(cfg, models.cache_dir, out_dir, data)
    _print_summary(result)
    if report:
        _write_report(result, out_dir / "report.html")
    err.print(f"Done in {time.perf_counter() - t0:.0f}s → [bold]{escape(str(out_dir))}[/]")


def _write_report(result: dict[str, Any], path: Path) -> None:
    from rewardhedge.report import render_report

    render_report(result, path)
    err.print(f"Report: [bold]{escape(str(path.resolve()))}[/]")


@with_flags(sandbox=LAB_SANDBOX_FLAGS, models=LabModels)
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for data, models, results and report.")
    ] = Path("rewardhedge-demo"),
    *,
    sandbox: dict[str, Any],
    models: LabModels,
) -> None:
    """The embedded default: sandbox → single model + ensemble → overoptimisation lab → report.html."""
    t0 = time.perf_counter()
    written = ("overopt.json", "report.html")
    check_outputs(
        folders={"--out": out_dir, "--cache-dir": models.cache_dir},
        files={f"--out's {name}": out_dir / name for name in written},
    )
    cfg = lab_config(models, LAB_SANDBOX_FLAGS.config(None, sandbox))
    data = export_sandbox(generate_sandbox(cfg.sandbox), out_dir / "data", label_seed=cfg.seeds[0])
    err.print(
        f"Sandbox data (pairs, pools with gold) → [bold]{escape(str(data['train'].parent))}[/]"
    )
    result, runs = _run_lab_cli(cfg, models.cache_dir or out_dir / "cache", out_dir)
    for name, model in runs[0].models.items():
        model.save(out_dir / "models" / name)
    err.print(
        f"Models of seed {cfg.seeds[0]} → [bold]{escape(str(out_dir / 'models'))}[/] "
        f"({', '.join(runs[0].models)})"
    )
    _print_summary(result)
    _write_report(result, out_dir / "report.html")
    err.print(
        f"[bold]Done in {time.perf_counter() - t0:.0f}s.[/] Try: rewardhedge bon --model "
        f"{out_dir / 'models' / cfg.options[-1]} --pools {data['pools']} --aggregate uwo --out picks.jsonl"
    )


def register(app: typer.Typer) -> None:
    """Add ``overopt`` and ``demo`` to the main app."""
    app.command()(overopt)
    app.command()(demo)
