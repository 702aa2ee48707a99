"""CLI commands that optimise against rewards and report: sandbox, bon, overopt, demo, report.

Registered on the main ``rewardhedge`` app by :func:`register`; each command
is a thin layer over :mod:`rewardhedge.optimize`, :mod:`rewardhedge.data.sandbox`
and :mod:`rewardhedge.report`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rewardhedge.cli_options import AggregateOpt, BetaOpt, LamOpt, progress_log, rule_from_flags
from rewardhedge.config import MemberNormKind
from rewardhedge.data import load_pools, parse_field_map, write_json_atomic, write_jsonl_atomic
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.data.sandbox.export import export_sandbox
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.loading import load_reward_model
from rewardhedge.progress_log import LogProgress, draws_live

err = Console(stderr=True)
out = Console()

CacheDirOpt = Annotated[Path | None, typer.Option(help="Embedding cache folder.")]


# Options shared by overopt and demo.
TrainPromptsOpt = Annotated[int, typer.Option(help="Training comparisons (one pair per prompt).")]
TestPromptsOpt = Annotated[int, typer.Option(help="Held-out comparisons for accuracy/calibration.")]
PromptsOpt = Annotated[
    int, typer.Option(help="Best-of-n prompts (one pool each); more, tighter CIs.")
]
PoolSizeOpt = Annotated[int, typer.Option("--n", help="Pool size N, the largest n.")]
SeedsOpt = Annotated[int, typer.Option(help="Label/training seeds.")]
MembersOpt = Annotated[int, typer.Option(help="Ensemble size.")]
OptionsOpt = Annotated[
    str | None,
    typer.Option(
        "--options",
        help="Ensembles to compare with the single model, comma-separated: bootstrap "
        "(seeds + resamples), subspace (a random half of the features each), views "
        "(one encoder view each); with --finetune: multihead, lora, independent, "
        "mc_dropout. Default: bootstrap,subspace,views, or multihead with --finetune.",
    ),
]
LabMemberNormOpt = Annotated[
    str,
    typer.Option(
        "--member-norm",
        help="standardize (default), center or none: members put on one footing before "
        "every aggregation but the mean.",
    ),
]
_SANDBOX = SandboxConfig()
EncoderOpt = Annotated[str, typer.Option(help="minilm (default) or hashing (a fast smoke run).")]


# -- sandbox -------------------------------------------------------------------------------
def sandbox(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")],
    train_prompts: Annotated[
        int, typer.Option(help="Training comparisons.")
    ] = _SANDBOX.train_prompts,
    test_prompts: Annotated[
        int, typer.Option(help="Held-out comparisons.")
    ] = _SANDBOX.test_prompts,
    pool_prompts: Annotated[int, typer.Option(help="Best-of-n pools.")] = 100,
    pool_size: Annotated[int, typer.Option(help="Candidates per pool.")] = 32,
    flip_rate: Annotated[float, typer.Option(help="Share of training labels flipped.")] = 0.25,
    temperature: Annotated[float, typer.Option(help="Bradley-Terry label temperature.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the texts.")] = 0,
    label_seed: Annotated[int, typer.Option(help="Seed of the training labels.")] = 0,
) -> None:
    """Write the sandbox task as example data: train/test pairs and best-of-n pools with gold."""
    cfg = SandboxConfig(
        seed=seed,
        train_prompts=train_prompts,
        test_prompts=test_prompts,
        pool_prompts=pool_prompts,
        pool_size=pool_size,
        flip_rate=flip_rate,
        temperature=temperature,
    )
    paths = export_sandbox(generate_sandbox(cfg), out_dir, label_seed=label_seed)
    for name, path in paths.items():
        err.print(f"{name:>7}: [bold]{escape(str(path))}[/]")


# -- bon -----------------------------------------------------------------------------------
def bon(
    model: Annotated[Path, typer.Option(help="Model folder written by train.")],
    pools: Annotated[Path, typer.Option(help="Pools: {prompt, candidates[], gold[]?} per row.")],
    out_file: Annotated[Path, typer.Option("--out", help="JSONL file of picks to write.")],
    aggregate: AggregateOpt = None,
    lam: LamOpt = None,
    beta: BetaOpt = None,
    summary: Annotated[
        Path | None, typer.Option(help="Also write the gold summary as JSON here.")
    ] = None,
    field: Annotated[list[str] | None, typer.Option("--field", help="prompt=question …")] = None,
    format: Annotated[str, typer.Option(help="jsonl, json, csv, parquet, hf or auto.")] = "auto",
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid")] = False,
    cache_dir: CacheDirOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
) -> None:
    """Best-of-n: pick each pool's candidate with the highest aggregated reward
    (the model's saved aggregation unless --aggregate is given)."""
    from rewardhedge.optimize.bon import best_of_n, summarise_picks

    rm = load_reward_model(model, cache_dir=cache_dir, use_cache=not no_cache)
    agg = rule_from_flags(rm.rule, aggregate, lam, beta, None, None).aggregation
    rows, report = load_pools(
        pools,
        fields=parse_field_map(field or []),
        format=format,
        skip_invalid=skip_invalid,
        rejects_path=out_file.with_name(out_file.name + ".rejects.jsonl") if skip_invalid else None,
    )
    err.print(f"[bold]{escape(str(pools))}[/]: {report.n_kept} pools kept of {report.n_read} read")
    picks = best_of_n(rm, rows, agg, progress=True)
    n = write_jsonl_atomic(out_file, (p.to_dict() | {"aggregation": agg.to_dict()} for p in picks))
    err.print(f"Wrote {n} picks ({agg.label()}) → [bold]{escape(str(out_file))}[/]")
    stats = summarise_picks(picks)
    if stats["n_pools_with_gold"]:
        table = Table(
            title=f"Best-of-n with {agg.label()} on {stats['n_pools_with_gold']} pools with gold"
        )
        for col in ("metric", "mean", "95% CI"):
            table.add_column(col)
        for key in ("gold", "regret", "win_vs_random", "random_gold", "best_gold"):
            s = stats[key]
            table.add_row(key, f"{s['mean']:.3f}", f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]")
        out.print(table)
    if summary is not None:
        write_json_atomic(summary, stats | {"aggregation": agg.to_dict(), "model": str(model)})


# -- overopt and demo ----------------------------------------------------------------------
@contextmanager
def _stages() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """A rich progress display; ``stage(name, total)`` adds a bar and returns ``advance``.
    Where stderr is not a terminal, each stage prints plain lines instead (its start,
    every 30 s or ``$REWARDHEDGE_LOG_EVERY_S``, its end)."""
    logs: list[LogProgress] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not draws_live(err),
    ) as progress:

        def stage(description: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(description, total=total)
            log = progress_log(description, total=total)
            logs.append(log)

            def advance(k: int) -> None:
                progress.advance(task, k)
                log.advance(k)

            return advance

        yield stage
    for log in logs:
        log.close()


def _lab_config(
    *,
    seeds: int,
    members: int,
    encoder: str,
    options: str | None,
    member_norm: str,
    finetune: Any = None,
    **sandbox: Any,
):
    """A LabConfig from CLI values; ``sandbox`` holds SandboxConfig fields (others keep defaults)."""
    from rewardhedge.lab.options import lab_encoder_config
    from rewardhedge.lab.overopt import LabConfig

    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    names = None if options is None else tuple(o.strip() for o in options.split(",") if o.strip())
    norm = MemberNormKind.parse(member_norm, "--member-norm")
    try:
        enc = lab_encoder_config(encoder)
    except ConfigError as exc:
        raise ConfigError(f"--encoder: {exc}") from exc
    try:
        return LabConfig(
            sandbox=SandboxConfig(**sandbox),
            seeds=tuple(range(seeds)),
            members=members,
            options=names,
            member_norm=norm,
            encoder=enc,
            finetune=finetune,
        )
    except ConfigError as exc:
        if "option" in str(exc):  # the options checks: name the flag
            raise ConfigError(f"--options: {exc}") from exc
        if finetune is not None:  # a fine-tuning setting one of the proxies cannot use
            raise ConfigError(f"--finetune-config: {exc}") from exc
        raise


def _finetune_template(backbone: str | None, config_file: Path | None):
    """The fine-tuning template of ``overopt --finetune``, or None (frozen proxies)."""
    if backbone is None and config_file is None:
        return None
    from rewardhedge.cli_finetune import finetune_config
    from rewardhedge.train.top_layers import check_layer_count

    cfg = finetune_config(config_file, {})
    if backbone == "minilm":
        from rewardhedge.encoders.transformer import minilm_path

        backbone = str(minilm_path())
    if backbone is not None:
        cfg = replace(cfg, backbone=backbone)
    if not cfg.backbone:
        raise ConfigError(f"--finetune-config: {config_file} names no backbone; add --finetune.")
    if not Path(cfg.backbone).is_dir():
        raise ConfigError(
            f"--finetune: backbone {cfg.backbone!r} is not a local folder; nothing is downloaded."
        )
    if cfg.train_top_layers is not None:
        check_layer_count(cfg.backbone, cfg.train_top_layers)
    return cfg


def _model_gold(rows, pools: Path, source: str, out_dir: Path, cache_dir, token):
    """The pools with gold from ``--gold-model`` (progress while scoring; cached)."""
    from rewardhedge.lab.gold_model import with_model_gold

    total = sum(len(r.candidates) for r in rows)
    with _stages() as stage:
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


POOL_FLAGS = {
    "labels.temperature": "--label-temperature",
    "labels.flip_rate": "--flip-rate",
    "labels.scale": "--label-scale",
    "pools.train_fraction": "--train-fraction",
    "pools.pairs_per_prompt": "--pairs-per-prompt",
}
"""The ``overopt --pools`` flag of each LabelModel/PoolSplit field."""


def _pool_split(
    train_fraction: float,
    pairs_per_prompt: int,
    label_scale: str,
    seed: int,
    flip_rate: float,
    temperature: float,
):
    """The PoolSplit of ``overopt --pools``, each bad value named by its flag."""
    from rewardhedge.lab.data import LabelModel, PoolSplit

    try:
        labels = LabelModel(temperature=temperature, flip_rate=flip_rate, scale=label_scale)
        return PoolSplit(
            train_fraction=train_fraction, pairs_per_prompt=pairs_per_prompt, seed=seed,
            labels=labels,
        )  # fmt: skip
    except ConfigError as exc:  # the dataclasses check; name the flag
        field = str(exc).split(" ", 1)[0]
        flag = POOL_FLAGS.get(field)
        raise (ConfigError(f"{flag}: {exc}") if flag else exc) from exc


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
    with _stages() as stage:
        result, runs = run_lab(cfg, data=data, cache_dir=cache_dir, stage=stage, progress=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "overopt.json", result)
    return result, runs


def _print_summary(result: dict[str, Any]) -> None:
    ns = result["ns"]
    table = Table(
        title=f"Gold reward of best-of-n (IQM over seeds of the mean over prompts, 95% CI); n = {ns[0]}…{ns[-1]}"
    )
    n_cmp = result.get("paired_n", ns[-1])
    for col in ("proxy", f"gold n={ns[0]}", "peak n", "fit peak n", f"gold n={n_cmp}", "95% CI"):
        table.add_column(col)
    for c in result["curves"]:
        fit = c.get("fit") or {}
        peak = fit.get("peak_n")
        g = c["gold_at_max_n"]
        table.add_row(
            c["label"],
            f"{c['gold']['iqm'][0]:.2f}",
            str(c["peak_n_observed"]),
            "—" if peak is None else f"{peak:.1f}",
            f"{g['iqm']:.2f}",
            f"[{g['ci_low']:.2f}, {g['ci_high']:.2f}]",
        )
    out.print(table)
    paired = result.get("paired") or []
    if paired:
        diff = Table(
            title=f"Gold at n={n_cmp} minus the single model's, paired by seed and prompt "
            "(95% CI resamples both)"
        )
        for col in ("ensemble · aggregation", "gold", "Δ vs single", "95% CI", "verdict"):
            diff.add_column(col)
        style = {"helps": "green", "hurts": "red"}
        for r in paired:
            verdict = r["verdict"]
            diff.add_row(
                r["label"],
                f"{r['gold']:.2f}",
                f"{r['diff']:+.2f}",
                f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]",
                f"[{style[verdict]}]{verdict}[/]" if verdict in style else verdict,
            )
        out.print(diff)
        helps = [r["label"] for r in paired if r["verdict"] == "helps"]
        out.print(
            "Keeps more gold than the single model (CI above 0): " + ", ".join(helps)
            if helps
            else f"No ensemble keeps more gold than the single model at n={n_cmp} (every CI "
            "reaches 0 or below)."
        )
    lengths = result.get("length_controls")
    if lengths:
        from rewardhedge.report.terminal import length_rows_table

        rows = [(r["label"], r) for r in lengths["rows"]]
        out.print(
            length_rows_table(
                rows, lengths["baselines"], "Length controls of the best-of-N picks", show_gold=True
            )
        )
    acc = ", ".join(f"{r['name']} {r['accuracy']:.3f}" for r in result["accuracy"])
    out.print(f"Held-out accuracy (gold order): {acc}")


def overopt(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for overopt.json (and the report).")
    ] = Path("rewardhedge-overopt"),
    train_prompts: TrainPromptsOpt = _SANDBOX.train_prompts,
    test_prompts: TestPromptsOpt = _SANDBOX.test_prompts,
    prompts: PromptsOpt = _SANDBOX.pool_prompts,
    pool_size: PoolSizeOpt = _SANDBOX.pool_size,
    seeds: SeedsOpt = 5,
    members: MembersOpt = 5,
    options: OptionsOpt = None,
    member_norm: LabMemberNormOpt = "standardize",
    flip_rate: Annotated[float, typer.Option(help="Share of labels flipped.")] = 0.25,
    temperature: Annotated[
        float,
        typer.Option(
            "--temperature",
            "--label-temperature",
            help="Bradley-Terry label temperature, in the units --label-scale gives the gold.",
        ),
    ] = 1.0,
    encoder: EncoderOpt = "minilm",
    data_seed: Annotated[
        int, typer.Option(help="Seed of the sandbox texts, or of the prompt split of --pools.")
    ] = 0,
    pools: Annotated[
        Path | None,
        typer.Option(
            help="Your best-of-n pools with gold ({prompt, candidates[], gold[]}, null for an "
            "unknown gold value) in place of the sandbox; see docs/lab-on-pools.md."
        ),
    ] = None,
    gold_model: Annotated[
        str | None,
        typer.Option(
            help="With --pools: score the candidates with this model (a rewardhedge model "
            "folder or a reward server URL) and use its mean reward as the gold; cached "
            "next to the pools file."
        ),
    ] = None,
    gold_token: Annotated[
        str | None, typer.Option(help="Bearer token for a --gold-model server.")
    ] = None,
    train_fraction: Annotated[
        float, typer.Option(help="With --pools: share of prompts to train the proxies on.")
    ] = 0.5,
    pairs_per_prompt: Annotated[
        int,
        typer.Option(help="With --pools: comparisons sampled per prompt (0: all pairs)."),
    ] = 16,
    label_scale: Annotated[
        str,
        typer.Option(
            help="With --pools: raw (temperature in gold units), standardize (in gold standard "
            "deviations) or rank (in fractions of a pool's rank range)."
        ),
    ] = "raw",
    field: Annotated[
        list[str] | None, typer.Option("--field", help="With --pools: prompt=question …")
    ] = None,
    format: Annotated[
        str, typer.Option(help="With --pools: jsonl, json, csv, parquet, hf or auto.")
    ] = "auto",
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="With --pools: skip bad rows (written to OUT/rejects)."
        ),
    ] = False,
    finetune: Annotated[
        str | None,
        typer.Option(
            "--finetune",
            help="Fine-tune the proxies from this local model folder, or `minilm` "
            "(default: heads on the frozen --encoder); see docs/lab-on-pools.md.",
        ),
    ] = None,
    finetune_config: Annotated[
        Path | None,
        typer.Option(
            help="JSON fine-tuning settings for the --finetune proxies (the keys of "
            "`finetune --config`: epochs, lr, max_length, train_top_layers, …)."
        ),
    ] = None,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Also write report.html.")
    ] = True,
    cache_dir: CacheDirOpt = None,
) -> None:
    """The overoptimisation lab: gold → noisy labels → proxies → best-of-n; gold and proxy vs KL.
    On the sandbox by default, on your own pools with gold with --pools."""
    t0 = time.perf_counter()
    split = None
    if gold_model is not None and pools is None:
        raise ConfigError("--gold-model labels the pools of --pools; give --pools too.")
    if pools is not None:
        split = _pool_split(train_fraction, pairs_per_prompt, label_scale, data_seed,
                            flip_rate, temperature)  # fmt: skip
    cfg = _lab_config(
        seeds=seeds,
        members=members,
        encoder=encoder,
        options=options,
        member_norm=member_norm,
        finetune=_finetune_template(finetune, finetune_config),
        seed=data_seed,
        train_prompts=train_prompts,
        test_prompts=test_prompts,
        pool_prompts=prompts,
        pool_size=pool_size,
        flip_rate=flip_rate,
        temperature=temperature,
    )
    data = None
    if split is not None:
        from rewardhedge.lab.data import from_pools

        rows, load = load_pools(
            pools,
            fields=parse_field_map(field or []),
            format=format,
            skip_invalid=skip_invalid,
            rejects_path=out_dir / "rejects.jsonl" if skip_invalid else None,
            missing_gold=True,
        )
        err.print(f"[bold]{escape(str(pools))}[/]: {load.n_kept} pools kept of {load.n_read} read")
        gold_info = None
        if gold_model is not None:
            rows, gold_info = _model_gold(rows, pools, gold_model, out_dir, cache_dir, gold_token)
        data = from_pools(rows, split, source=str(pools))
        if gold_info is not None:
            data = replace(data, summary=data.summary | {"gold": gold_info})
        cfg = replace(cfg, pools=split)
    result, _ = _run_lab_cli(cfg, cache_dir, out_dir, data)
    _print_summary(result)
    if report:
        _write_report(result, out_dir / "report.html")
    err.print(f"Done in {time.perf_counter() - t0:.0f}s → [bold]{escape(str(out_dir))}[/]")


def _write_report(result: dict[str, Any], path: Path) -> None:
    from rewardhedge.report import render_report

    render_report(result, path)
    err.print(f"Report: [bold]{escape(str(path.resolve()))}[/]")


def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for data, models, results and report.")
    ] = Path("rewardhedge-demo"),
    prompts: PromptsOpt = _SANDBOX.pool_prompts,
    pool_size: PoolSizeOpt = _SANDBOX.pool_size,
    seeds: SeedsOpt = 5,
    members: MembersOpt = 5,
    train_prompts: TrainPromptsOpt = _SANDBOX.train_prompts,
    test_prompts: TestPromptsOpt = _SANDBOX.test_prompts,
    options: OptionsOpt = "bootstrap,subspace,views",
    member_norm: LabMemberNormOpt = "standardize",
    encoder: EncoderOpt = "minilm",
    cache_dir: CacheDirOpt = None,
) -> None:
    """The embedded default: sandbox → single model + ensemble → overoptimisation lab → report.html."""
    t0 = time.perf_counter()
    cfg = _lab_config(
        seeds=seeds,
        members=members,
        encoder=encoder,
        options=options,
        member_norm=member_norm,
        train_prompts=train_prompts,
        test_prompts=test_prompts,
        pool_prompts=prompts,
        pool_size=pool_size,
    )
    data = export_sandbox(generate_sandbox(cfg.sandbox), out_dir / "data", label_seed=cfg.seeds[0])
    err.print(
        f"Sandbox data (pairs, pools with gold) → [bold]{escape(str(data['train'].parent))}[/]"
    )
    result, runs = _run_lab_cli(cfg, cache_dir or out_dir / "cache", out_dir)
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


# -- report --------------------------------------------------------------------------------
def report(
    inputs: Annotated[list[Path], typer.Argument(help="Lab or eval JSON files.")],
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "report.html"
    ),
    title: Annotated[str | None, typer.Option(help="Page title.")] = None,
) -> None:
    """Render lab (overopt.json) and eval JSON files as one self-contained HTML page."""
    from rewardhedge.report import render_report

    results = []
    for path in inputs:
        try:
            results.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read JSON ({exc})") from exc
    render_report(results if len(results) > 1 else results[0], out_file, title=title)
    err.print(f"Report: [bold]{escape(str(out_file.resolve()))}[/]")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(sandbox)
    app.command()(bon)
    app.command()(overopt)
    app.command()(demo)
    app.command()(report)
