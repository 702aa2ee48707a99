"""``overopt --pools --gold-model``: gold from a model folder or a real reward server,
cached beside the pools, and the same lab as gold values equal to that model's scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewardhedge import cli
from rewardhedge.config import EncoderConfig, EnsembleConfig
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.estimators.ensemble import EnsembleRewardModel

LAB = ["--seeds", "2", "--members", "2", "--options", "bootstrap", "--encoder", "hashing",
       "--no-report"]  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A gold model (hashing, trained on sandbox gold pairs) and pools without gold."""
    root = tmp_path_factory.mktemp("gold")
    sandbox = generate_sandbox(SandboxConfig(train_prompts=200, test_prompts=5, pool_prompts=24,
                                             pool_size=6))  # fmt: skip
    cfg = EnsembleConfig(n_members=2, encoder=EncoderConfig(kind="hashing", dim=64))
    model = EnsembleRewardModel(cfg, use_cache=False).fit(sandbox.gold_pairs("train"))
    folder = model.save(root / "gold_rm")
    rows = [{"prompt": p.task.prompt, "candidates": [r.text for r in p.responses]}
            for p in sandbox.pools]  # fmt: skip
    bare = root / "pools.jsonl"
    bare.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root, model, folder, rows, bare


def test_gold_model_equals_gold_values_from_that_model(setup, capsys):
    root, model, folder, rows, bare = setup
    scored = []
    for r in rows:
        est = model.score([r["prompt"]] * len(r["candidates"]), r["candidates"])
        scored.append(r | {"gold": [float(x) for x in est.mean]})
    with_gold = root / "with_gold.jsonl"
    with_gold.write_text("".join(json.dumps(r) + "\n" for r in scored))

    assert cli.main(["overopt", "--pools", str(bare), "--gold-model", str(folder),
                     "--out", str(root / "a"), *LAB]) == 0  # fmt: skip
    assert "scored" in capsys.readouterr().err
    assert cli.main(["overopt", "--pools", str(with_gold), "--out", str(root / "b"), *LAB]) == 0
    a = json.loads((root / "a" / "overopt.json").read_text())
    b = json.loads((root / "b" / "overopt.json").read_text())
    for ca, cb in zip(a["curves"], b["curves"], strict=True):
        assert ca["label"] == cb["label"]
        assert np.allclose(ca["per_seed_gold"], cb["per_seed_gold"], rtol=1e-9, atol=1e-9)
    assert a["data"]["gold"]["gold_model"] == str(folder)

    # A rerun reads the cache beside the pools file instead of scoring again.
    cache = list(root.glob("pools.jsonl.gold-*.json"))
    assert len(cache) == 1
    assert cli.main(["overopt", "--pools", str(bare), "--gold-model", str(folder),
                     "--out", str(root / "c"), *LAB]) == 0  # fmt: skip
    assert "read from the cache" in capsys.readouterr().err
    c = json.loads((root / "c" / "overopt.json").read_text())
    assert c["curves"][0]["per_seed_gold"] == a["curves"][0]["per_seed_gold"]


def test_gold_from_a_running_server_matches_the_folder(setup, capsys):
    pytest.importorskip("uvicorn")
    from rewardhedge.lab.gold_model import score_gold
    from rewardhedge.optimize.remote import RemoteRewardModel
    from rewardhedge.serve import BackgroundServer, create_app
    from rewardhedge.types import CandidatePool

    root, model, _, rows, bare = setup
    pools = [CandidatePool(r["prompt"], tuple(r["candidates"])) for r in rows]
    with BackgroundServer(create_app(model, token="t")) as url:
        with RemoteRewardModel(url, token="t") as remote:
            served = score_gold(remote, pools)
        out = root / "served"
        code = cli.main(["overopt", "--pools", str(bare), "--gold-model", url, "--gold-token",
                         "t", "--out", str(out), *LAB])  # fmt: skip
    assert code == 0
    local = score_gold(model, pools)
    assert np.allclose(np.concatenate(served), np.concatenate(local), atol=1e-5)
    assert json.loads((out / "overopt.json").read_text())["data"]["gold"]["gold_model"] == url


def test_gold_model_without_pools_or_missing_folder_is_one_line(setup, tmp_path, capsys):
    *_, folder, _, bare = setup
    code = cli.main(["overopt", "--gold-model", str(folder), "--out", str(tmp_path / "x")])
    assert code == 2 and "--pools" in capsys.readouterr().err
    code = cli.main(["overopt", "--pools", str(bare), "--gold-model", str(tmp_path / "nope"),
                     "--out", str(tmp_path / "y"), *LAB])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--gold-model" in err and "Traceback" not in err
    assert not (tmp_path / "y").exists()
