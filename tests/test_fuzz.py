"""Fuzzing that keeps the hardening: any file either loads or gives one clear error, and
any command line either works or exits 2 without a traceback.

Hypothesis drives the inputs. CI runs a bounded number of examples per property (the
``fuzz`` profile below); set ``REWARDHEDGE_FUZZ_EXAMPLES`` to run more locally.
"""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardhedge.cli import main
from rewardhedge.data import load_items, load_one_to_many, load_pairs, load_pools
from rewardhedge.errors import RewardHedgeError

EXAMPLES = int(os.environ.get("REWARDHEDGE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FIELDS = ["prompt", "chosen", "rejected", "response", "candidates", "gold", "margin",
          "chosen_score", "rejected_score", "subset", "id", "source", "split"]  # fmt: skip

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cc",)) | st.sampled_from("\n\t\r\x00\ud800"),
    max_size=12,
)
scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True) | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=6)
rows = st.dictionaries(st.sampled_from(FIELDS) | texts, values, max_size=6)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    return path


def _jsonl_lines(draw_rows: list[dict], garbage: list[str]) -> list[str]:
    lines = [json.dumps(r) for r in draw_rows]
    for i, g in enumerate(garbage):
        lines.insert(i % (len(lines) + 1), g)
    return lines


LOADERS = {
    "pairs": load_pairs,
    "items": load_items,
    "pools": load_pools,
    "one_to_many": load_one_to_many,
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
@FUZZ
@given(data=st.lists(rows, max_size=5), garbage=st.lists(texts, max_size=2), skip=st.booleans())
def test_any_file_loads_or_gives_one_clear_error(
    kind: str, suffix: str, data: list[dict], garbage: list[str], skip: bool, tmp_path: Path
) -> None:
    if suffix == ".json":
        body = [json.dumps(data), *garbage]
    elif suffix == ".csv":
        cols = sorted({k for r in data for k in r}) or ["prompt"]
        body = [",".join(json.dumps(c) for c in cols)] + [
            ",".join(json.dumps(str(r.get(c, ""))) for c in cols) for r in data
        ] + garbage  # fmt: skip
    else:
        body = _jsonl_lines(data, garbage)
    path = _write(tmp_path / f"f{suffix}", body)
    try:
        loaded, report = LOADERS[kind](path, skip_invalid=skip, rejects_path=tmp_path / "r.jsonl")
    except RewardHedgeError as exc:
        message = str(exc).strip()
        assert message and "\n" not in message, message  # one line: the CLI prints it as is
        return
    assert report.n_kept == len(loaded) and report.n_read >= report.n_kept


def assert_clean(code: int, err: str, args: list[str]) -> None:
    """The invariant of every command line: exit 0 or 2, no traceback, and an error this
    library raises is one line."""
    assert code in (0, 2), (args, err)
    assert "Traceback" not in err, (args, err)
    if code == 2 and err.startswith("error:"):
        assert len(err.strip().splitlines()) == 1, (args, err)


flag_values = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(alphabet=string.printable, max_size=8),
    st.sampled_from(["", "-1", "0", "nan", "inf", "1e309", "minilm", "mlp", "views", "auto"]),
)
TRAIN_FLAGS = ["--members", "--head", "--epochs", "--lr", "--l2", "--val-fraction",
               "--patience", "--seed", "--encoder", "--max-length", "--layers", "--estimator",
               "--mc-samples", "--laplace-samples", "--laplace-prior", "--calibration-folds",
               "--member-norm", "--diversity", "--subspace-fraction", "--views", "--aggregate",
               "--lam", "--beta", "--transform", "--reference", "--format", "--dialogue",
               "--field"]  # fmt: skip


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "pairs.jsonl"
    rows = [{"prompt": f"q{i}", "chosen": f"good {i} answer", "rejected": f"bad {i}"}
            for i in range(24)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@FUZZ
@given(chosen=st.lists(st.tuples(st.sampled_from(TRAIN_FLAGS), flag_values), max_size=3))
def test_any_train_flags_work_or_exit_2_without_a_traceback(
    chosen: list[tuple[str, str]],
    pairs_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys,
) -> None:
    out = tmp_path_factory.mktemp("rm") / "rm"
    args = ["train", "--data", str(pairs_file), "--out", str(out), "--encoder", "hashing",
            "--epochs", "3", "--calibration-folds", "0", "--members", "2"]  # fmt: skip
    for flag, value in chosen:
        if flag in ("--members", "--epochs", "--mc-samples", "--laplace-samples"):
            value = value if len(value) < 3 else "2"  # keep a fit small: sizes are checked below
        args += [flag, value]
    code = main(args)
    err = capsys.readouterr().err
    assert_clean(code, err, args)


@FUZZ
@given(chosen=st.lists(st.tuples(st.sampled_from(["--reps", "--seed", "--batch-check", "--task",
                                                  "--perturb", "--abstain-alpha",
                                                  "--abstain-delta", "--abstain-on"]),
                                 flag_values), max_size=3))  # fmt: skip
def test_any_eval_flags_work_or_exit_2_without_a_traceback(
    chosen: list[tuple[str, str]], trained: Path, pairs_file: Path, capsys
) -> None:
    args = ["eval", "--model", str(trained), "--data", str(pairs_file), "--batch-check", "0",
            "--reps", "50"]  # fmt: skip
    for flag, value in chosen:
        if flag == "--reps":
            value = value if len(value) < 3 else "50"
        args += [flag, value]
    code = main(args)
    err = capsys.readouterr().err
    assert_clean(code, err, args)


@pytest.fixture(scope="module")
def trained(pairs_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "rm"
    args = ["train", "--data", str(pairs_file), "--out", str(out), "--encoder", "hashing",
            "--members", "2", "--epochs", "5", "--calibration-folds", "0"]  # fmt: skip
    assert main(args) == 0
    return out


def _flags_of(command: str) -> list[str]:
    """Every ``--flag`` of a command, from its signature (so a new flag is fuzzed too)."""
    from rewardhedge.cli import app
    from rewardhedge.cli.flags import flag_help

    callback = next(
        c.callback for c in app.registered_commands if (c.name or c.callback.__name__) == command
    )
    return sorted(flag_help(callback))


@pytest.fixture(scope="module")
def pools_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz-pools") / "pools.jsonl"
    rows = [{"prompt": f"q{i}", "candidates": [f"a{i}", f"b {i}", f"c {i} x"], "gold": [1, 2, 3]}
            for i in range(6)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("command", ["score", "bon", "serve", "overopt"])
@FUZZ
@given(data=st.data())
def test_any_flags_of_any_command_work_or_exit_2_without_a_traceback(
    command: str, data: st.DataObject, trained: Path, pairs_file: Path, pools_file: Path,
    tmp_path_factory: pytest.TempPathFactory, capsys,
) -> None:  # fmt: skip
    """Random values for the command's own flags, on inputs that keep the work small:
    serve gets a model path that does not exist (it must stop before serving), overopt
    a pools file that does not exist (it must stop before training)."""
    out = tmp_path_factory.mktemp("out")
    base = {
        "score": ["score", "--model", str(trained), "--data", str(pairs_file),
                  "--out", str(out / "s.jsonl")],
        "bon": ["bon", "--model", str(trained), "--pools", str(pools_file),
                "--out", str(out / "b.jsonl")],
        "serve": ["serve", "--model", str(out / "no-model"), "--port", "0"],
        "overopt": ["overopt", "--pools", str(out / "no-pools.jsonl"), "--out", str(out / "lab")],
    }[command]  # fmt: skip
    skip = {"--model", "--data", "--out", "--pools", "--port", "--json", "--summary"}
    flags = [f for f in _flags_of(command) if f not in skip]
    chosen = data.draw(st.lists(st.tuples(st.sampled_from(flags), flag_values), max_size=3))
    args = list(base)
    for flag, value in chosen:
        args += [flag, value]
    code = main(args)
    err = capsys.readouterr().err
    assert_clean(code, err, args)
