"""The import rule that keeps the architecture visible (README, "Architecture"): data flows
one way, each stage imports only from those before it, loading a model does not import
the training code, and the numpy core stays free of torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rewardhedge"

STAGES = [
    {"errors", "types", "config", "config_finetune", "progress_log"},
    {"data"},
    {"encoders"},
    {"models"},
    {"train"},
    {"uncertainty"},
    {"evaluate"},
    {"optimize"},
    {"estimators"},
    {"lab"},
    {"serve"},
    {"report"},
    {"cli", "__main__"},
]
"""The stages in data-flow order; a unit is a folder or a module at the package root."""

FREE = {"__init__", "_moved"}
"""The package root (the version and lazy exports) and the old-path finder, which
import by name on first use and belong to no stage."""

NUMPY_CORE = {"errors", "types", "config", "uncertainty", "evaluate", "optimize"}
HEAVY = {"torch", "transformers", "peft", "accelerate", "safetensors"}


def unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def rank(name: str) -> int:
    return next(i for i, stage in enumerate(STAGES) if name in stage)


def imports(path: Path, *, top_level_only: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in the file (or only those run at import time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_stage() -> None:
    units = {unit(p) for p in SOURCES} - FREE
    assert not units - set().union(*STAGES), "add new folders to STAGES (and the README)"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_stage_imports_a_later_one(path: Path) -> None:
    here = unit(path)
    if here in FREE:
        return
    for line, module in imports(path):
        parts = module.split(".")
        if parts[0] != "rewardhedge" or len(parts) == 1:
            continue  # third-party, or the root's __version__
        target = parts[1]
        if target in FREE or target == here:
            continue
        assert rank(target) <= rank(here), (
            f"{path.relative_to(PACKAGE)}:{line} ({here}) imports {module} ({target}), "
            "a later stage"
        )


@pytest.mark.parametrize(
    "path",
    [p for p in SOURCES if unit(p) in NUMPY_CORE],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_numpy_core_imports_no_torch(path: Path) -> None:
    heavy = [(line, m) for line, m in imports(path) if m.split(".")[0] in HEAVY]
    assert not heavy, f"{path.relative_to(PACKAGE)} imports {heavy}"


def test_the_rule_catches_a_backward_import(tmp_path: Path) -> None:
    """The check above can fail: an encoder importing the training code is refused."""
    bad = PACKAGE / "encoders" / "__probe__.py"
    try:
        bad.write_text("from rewardhedge.train.finetune import finetune\n")
        with pytest.raises(AssertionError, match="a later stage"):
            test_no_stage_imports_a_later_one(bad)
    finally:
        bad.unlink()


def test_loading_and_scoring_a_model_imports_no_training_code(tmp_path: Path) -> None:
    from rewardhedge.config import EncoderConfig, EnsembleConfig, UncertaintyConfig
    from rewardhedge.estimators.ensemble import EnsembleRewardModel
    from rewardhedge.types import PreferencePair

    pairs = [PreferencePair(f"q{i}", f"good answer {i}", f"bad {i}") for i in range(24)]
    cfg = EnsembleConfig(
        n_members=2,
        encoder=EncoderConfig(kind="hashing", dim=32),
        uncertainty=UncertaintyConfig(calibration_folds=0),
    )
    EnsembleRewardModel(cfg).fit(pairs).save(tmp_path / "rm")
    script = (
        "import sys\n"
        "from rewardhedge import load_reward_model\n"
        f"m = load_reward_model({str(tmp_path / 'rm')!r})\n"
        "print(m.score(['q'], ['a good answer']).mean.shape)\n"
        "print(sorted(n for n in sys.modules if n.startswith('rewardhedge.train')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["(1,)", "[]"]


def test_importing_the_package_imports_no_torch() -> None:
    script = "import sys, rewardhedge, rewardhedge.estimators; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("old", "name"),
    [
        ("rewardhedge.reward_model", "EnsembleRewardModel"),
        ("rewardhedge.finetuned_model", "FinetunedRewardModel"),
        ("rewardhedge.loading", "load_reward_model"),
        ("rewardhedge.eval_suite", "evaluate_pairs"),
        ("rewardhedge.optimize.overopt", "run_lab"),
    ],
)
def test_old_module_paths_still_import_the_same_objects(old: str, name: str) -> None:
    import importlib
    import warnings

    from rewardhedge._moved import MOVED

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    new = importlib.import_module(MOVED[old])
    assert getattr(module, name) is getattr(new, name)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
