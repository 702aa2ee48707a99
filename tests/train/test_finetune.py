"""Fine-tuning a Hugging Face backbone into a reward model, on tiny random backbones.

The backbones (2 layers, width 32) come from ``tests/train/conftest.py``: a Qwen2 decoder
with a ChatML template (chat layout), a Llama decoder without one (plain layout) and a BERT
encoder (pair layout, first-token pooling). The task is learnable: chosen and rejected
share prompt and filler and differ only in a 'good' or 'bad' word near the response's end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import spearmanr

from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.encoders.reward_tokenizer import RewardTokenizer, prompt_messages
from rewardhedge.errors import ModelFormatError
from rewardhedge.estimators.finetuned import (
    FinetunedRewardModel,
    build_network,
    is_finetuned_folder,
)
from rewardhedge.models.reward_transformer import LoraEnsemble, default_pooling, load_backbone
from rewardhedge.train.pair_data import EncodedPairs, collate, padding_fraction, pair_batches
from rewardhedge.types import PreferencePair

pytestmark = pytest.mark.usefixtures("single_thread")

Pairs = Callable[..., list[PreferencePair]]

BASE = {"batch_size": 8, "lr": 5e-3, "max_length": 48, "log_every": 4, "warmup_ratio": 0.1}
"""Settings every test starts from: small batches and sequences, a high learning rate."""

LAYOUTS = {"tiny_qwen2": "chat", "tiny_llama": "plain", "tiny_bert": "pair"}


def fit(
    backbone: Path,
    pairs: list[PreferencePair],
    *,
    eval_pairs: list[PreferencePair] | None = None,
    **overrides: object,
) -> FinetunedRewardModel:
    config = FinetuneConfig(backbone=str(backbone), **{**BASE, **overrides})
    return FinetunedRewardModel(config).fit(pairs, eval_pairs=eval_pairs)


def losses(model: FinetunedRewardModel) -> list[float]:
    return [h["loss"] for h in model.report_.history if "loss" in h]


def accuracy(model: FinetunedRewardModel, pairs: list[PreferencePair]) -> float:
    est = model.compare(pairs)
    return float(np.mean(est.chosen.mean > est.rejected.mean))


def hf_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def token_ids(tok, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


# --------------------------------------------------------------------------- learning


@pytest.mark.slow
@pytest.mark.parametrize("backbone", sorted(LAYOUTS))
def test_loss_falls_and_held_out_pairs_are_ranked(
    backbone: str, request: pytest.FixtureRequest, synthetic_pairs: Pairs, tmp_path: Path
) -> None:
    folder = request.getfixturevalue(backbone)
    model = fit(folder, synthetic_pairs(64, seed=0), max_steps=32)
    assert model.tokenizer_.layout == LAYOUTS[backbone]
    assert model.pooling_ == ("first" if backbone == "tiny_bert" else "last")
    logged = losses(model)
    assert len(logged) == 8  # every 4th of 32 steps
    assert np.mean(logged[-3:]) < logged[0] - 0.2, logged
    held_out = synthetic_pairs(64, seed=1000)
    assert accuracy(model, held_out) >= 0.8
    assert model.report_.steps == 32

    # The layout (and so every token id) survives save and load with the tokenizer files.
    loaded = FinetunedRewardModel.load(model.save(tmp_path / backbone))
    assert loaded.tokenizer_.layout == LAYOUTS[backbone]
    assert loaded.pooling_ == model.pooling_
    prompts, responses = [p.prompt for p in held_out], [p.chosen for p in held_out]
    ids_before, _ = model.tokenizer_.encode_many(prompts, responses)
    ids_after, _ = loaded.tokenizer_.encode_many(prompts, responses)
    assert ids_after == ids_before
    before, after = model.score(prompts, responses), loaded.score(prompts, responses)
    assert np.max(np.abs(before.members - after.members)) < 1e-6


# --------------------------------------------------------------------------- ensemble kinds

KINDS: dict[str, dict[str, object]] = {
    "single": {},
    "multihead": {"n_members": 3},
    "lora": {"n_members": 2, "lora": {"r": 4, "alpha": 8}},
    "independent": {"n_members": 2},
    "mc_dropout": {"mc_samples": 6},
}
MEMBERS = {"single": 1, "multihead": 3, "lora": 2, "independent": 2, "mc_dropout": 6}


@pytest.fixture(scope="module")
def trained(
    tiny_qwen2: Path, synthetic_pairs: Pairs, single_thread: None
) -> Callable[[str], FinetunedRewardModel]:
    """``trained(kind)``: a tiny-Qwen2 model of that ensemble kind after 6 steps (with eval
    pairs, so the temperature is fitted), built once per module."""
    cache: dict[str, FinetunedRewardModel] = {}

    def get(kind: str) -> FinetunedRewardModel:
        if kind not in cache:
            cache[kind] = fit(
                tiny_qwen2,
                synthetic_pairs(32, seed=1),
                eval_pairs=synthetic_pairs(16, seed=2),
                ensemble=kind,
                max_steps=6,
                **KINDS[kind],
            )
        return cache[kind]

    return get


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_ensemble_kind_scores_saves_and_loads(
    kind: str, trained: Callable[[str], FinetunedRewardModel], synthetic_pairs: Pairs, tmp_path
) -> None:
    model = trained(kind)
    items = synthetic_pairs(10, seed=3)
    prompts, responses = [p.prompt for p in items], [p.chosen for p in items]
    est = model.score(prompts, responses)
    assert est.members.shape == (MEMBERS[kind], 10)
    assert model.n_members == MEMBERS[kind]
    assert np.isfinite(est.members).all()
    if kind == "single":
        assert np.all(est.epistemic == 0)
    else:
        assert np.max(est.epistemic) > 0, "members are identical"
    if kind in ("multihead", "lora", "independent"):
        rows = est.members
        assert all(not np.allclose(rows[a], rows[b]) for a in range(len(rows)) for b in range(a)), (
            "two members give the same rewards"
        )

    # A reward does not depend on what else is in its batch (padding, MC-dropout masks).
    one_by_one = model.score_batched(prompts, responses, batch_size=1)
    np.testing.assert_allclose(one_by_one.members, est.members, rtol=0, atol=1e-5)

    folder = model.save(tmp_path / kind)
    assert is_finetuned_folder(folder)
    assert not is_finetuned_folder(tmp_path)
    pickles = [p.name for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    assert pickles == []
    loaded = FinetunedRewardModel.load(folder)
    again = loaded.score(prompts, responses)
    assert again.members.shape == est.members.shape
    assert np.max(np.abs(again.members - est.members)) < 1e-6
    assert loaded.temperature == model.temperature
    assert model.temperature != 1.0  # fitted on the eval pairs
    assert loaded.tokenizer_.layout == "chat"
    assert loaded.config == model.config


def lora_base_key(name: str) -> str | None:
    """The backbone-folder key of a base weight of a ``LoraEnsemble`` (None for LoRA/heads)."""
    if not name.startswith("peft.base_model.model.") or "lora_" in name:
        return None
    return name.removeprefix("peft.base_model.model.").replace(".base_layer.", ".")


def test_lora_ensemble_trains_every_adapter_and_leaves_the_base_alone(
    trained: Callable[[str], FinetunedRewardModel], tiny_qwen2: Path
) -> None:
    model = trained("lora")
    net = model.network_
    assert isinstance(net, LoraEnsemble)
    state = net.state_dict()

    original = load_file(str(tiny_qwen2 / "model.safetensors"))
    base = {lora_base_key(k): v for k, v in state.items() if lora_base_key(k) is not None}
    assert set(base) == set(original)
    changed = [k for k, v in base.items() if not torch.equal(v, original[k])]
    assert changed == []

    # Each adapter moved away from its initial weights (they all train, not only the last).
    config = model.config
    fresh = build_network(load_backbone(tiny_qwen2), config, model.pooling_).state_dict()
    lora_keys = [k for k in state if "lora_" in k]
    for name in net.names:
        mine = [k for k in lora_keys if f".{name}." in k]
        assert mine, name
        assert any(not torch.equal(state[k], fresh[k]) for k in mine), f"adapter {name} untrained"
    # ... and the adapters differ from each other.
    a_keys = [k for k in lora_keys if ".m0." in k]
    for k in a_keys:
        assert not torch.equal(state[k], state[k.replace(".m0.", ".m1.")]), k


# --------------------------------------------------------------------------- truncation


@pytest.mark.parametrize("backbone", sorted(LAYOUTS))
def test_truncation_cuts_the_prompt_and_keeps_the_response_end(
    backbone: str, request: pytest.FixtureRequest
) -> None:
    tok = hf_tokenizer(request.getfixturevalue(backbone))
    rt = RewardTokenizer(tok, max_length=32)
    assert rt.layout == LAYOUTS[backbone]
    prompt = "question " + " ".join(["cats dogs math code rain"] * 40)
    response = "the final answer is excellent"
    item = rt.encode(prompt, response)
    assert item.prompt_truncated
    assert not item.response_truncated
    assert len(item.ids) == 32

    r = token_ids(tok, response)
    if rt.layout == "chat":
        before, closing = token_ids(tok, "<|im_start|>assistant\n"), token_ids(tok, "<|im_end|>\n")
    elif rt.layout == "pair":
        before, closing = [tok.sep_token_id], [tok.sep_token_id]
        assert item.ids[0] == tok.cls_token_id
    else:
        before, closing = [], [tok.eos_token_id]
        assert item.ids[0] == tok.bos_token_id
    expected_end = before + r + closing
    assert item.ids[-len(expected_end) :] == expected_end
    kept = item.ids[-len(closing) - len(r) : -len(closing)]
    assert tok.decode(kept).strip() == response


def test_truncated_pairs_are_kept_and_counted(
    tiny_qwen2: Path, synthetic_pairs: Pairs, tmp_path: Path
) -> None:
    long_prompt = "question " + " ".join(["cats dogs math code rain"] * 40)
    pairs = synthetic_pairs(6, seed=4, max_filler=2)
    pairs += [
        PreferencePair(long_prompt, "so great answer", "so bad answer"),
        PreferencePair(long_prompt + " why", "it is correct answer", "it is wrong answer"),
    ]
    tok = RewardTokenizer(hf_tokenizer(tiny_qwen2), max_length=48)
    data = EncodedPairs.encode(pairs, tok)
    assert len(data) == len(pairs)
    assert data.truncated.tolist() == [False] * 6 + [True, True]
    assert max(data.lengths) <= 48

    model = fit(tiny_qwen2, pairs, max_steps=1)
    report = model.report_
    assert report.n_pairs == 8
    assert report.n_truncated == 2
    assert report.pairs_seen == 8
    assert model.report_.to_dict()["n_truncated"] == 2
    saved = json.loads((model.save(tmp_path / "m") / "config.json").read_text())
    assert saved["training"]["n_truncated"] == 2


# --------------------------------------------------------------------------- chat turns

HH_PROMPT = "\n\nHuman: hi there\n\nAssistant: hello\n\nHuman: why is the sky blue?\n\nAssistant:"


def test_hh_dialogue_becomes_chat_turns() -> None:
    assert prompt_messages(HH_PROMPT) == [
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "why is the sky blue?"},
    ]
    assert prompt_messages("why is the sky blue?") == [
        {"role": "user", "content": "why is the sky blue?"}
    ]
    # Text before the first turn marker: not an HH dialogue, the prompt stays one user turn.
    preamble = "Context first." + HH_PROMPT
    assert prompt_messages(preamble) == [{"role": "user", "content": preamble}]


def test_hh_dialogue_is_encoded_with_the_chat_template(tiny_qwen2: Path) -> None:
    tok = hf_tokenizer(tiny_qwen2)
    item = RewardTokenizer(tok, max_length=256).encode(HH_PROMPT, "rayleigh scattering")
    assert not item.truncated
    assert tok.decode(item.ids) == (
        "<|im_start|>user\nhi there<|im_end|>\n"
        "<|im_start|>assistant\nhello<|im_end|>\n"
        "<|im_start|>user\nwhy is the sky blue?<|im_end|>\n"
        "<|im_start|>assistant\nrayleigh scattering<|im_end|>\n"
    )


# --------------------------------------------------------------------------- length grouping


def skewed_lengths(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    chosen = np.clip(rng.lognormal(mean=4.0, sigma=1.0, size=n), 4, 4096).astype(np.int64)
    rejected = np.clip(chosen + rng.integers(-8, 9, size=n), 4, None)
    return chosen, rejected


def test_length_grouping_cuts_padding_by_more_than_half() -> None:
    chosen, rejected = skewed_lengths(3000, seed=0)
    lengths = np.maximum(chosen, rejected)
    grouped = pair_batches(lengths, 8, seed=0, epoch=0, group_by_length=True)
    shuffled = pair_batches(lengths, 8, seed=0, epoch=0, group_by_length=False)
    pad_grouped = padding_fraction(chosen, rejected, grouped)
    pad_shuffled = padding_fraction(chosen, rejected, shuffled)
    assert pad_shuffled > 0.3
    assert pad_grouped < 0.5 * pad_shuffled, (pad_grouped, pad_shuffled)


@pytest.mark.parametrize("group", [True, False])
def test_pair_batches_cover_every_pair_once_and_are_deterministic(group: bool) -> None:
    chosen, _ = skewed_lengths(1001, seed=1)
    n = len(chosen)
    epochs = [pair_batches(chosen, 8, seed=7, epoch=e, group_by_length=group) for e in range(3)]
    for batches in epochs:
        flat = np.concatenate(batches)
        assert np.array_equal(np.sort(flat), np.arange(n))
        assert len(batches) == -(-n // 8)
        assert all(1 <= len(b) <= 8 for b in batches)
    again = pair_batches(chosen, 8, seed=7, epoch=1, group_by_length=group)
    assert all(np.array_equal(a, b) for a, b in zip(again, epochs[1], strict=True))
    orders = [np.concatenate(b) for b in epochs]
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])
    other_seed = np.concatenate(pair_batches(chosen, 8, seed=8, epoch=1, group_by_length=group))
    assert not np.array_equal(other_seed, orders[1])


# --------------------------------------------------------------------------- objectives


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["regression", "bt_regression"])
def test_regression_objectives_learn_the_ratings(
    objective: str, tiny_qwen2: Path, synthetic_pairs: Pairs
) -> None:
    model = fit(
        tiny_qwen2, synthetic_pairs(64, seed=0, scores=True), objective=objective, max_steps=48
    )
    logged = losses(model)
    assert all(np.isfinite(logged))
    assert np.mean(logged[-3:]) < 0.5 * logged[0], logged
    test = synthetic_pairs(32, seed=1000, scores=True)
    est = model.score(
        [p.prompt for p in test] * 2, [p.chosen for p in test] + [p.rejected for p in test]
    )
    ratings = np.array([p.chosen_score for p in test] + [p.rejected_score for p in test])
    rho = spearmanr(est.mean, ratings).statistic
    assert rho > 0.5, rho
    # The rewards are on the ratings' scale, not only in their order.
    assert np.mean((est.mean - ratings) ** 2) < 0.5 * np.var(ratings)


# --------------------------------------------------------------------------- accumulation


def test_grad_accum_halves_the_optimizer_steps(tiny_qwen2: Path, synthetic_pairs: Pairs) -> None:
    pairs = synthetic_pairs(32, seed=5, max_filler=2)
    one = fit(tiny_qwen2, pairs, epochs=1, grad_accum=1, log_every=1).report_
    two = fit(tiny_qwen2, pairs, epochs=1, grad_accum=2, log_every=1).report_
    assert (one.total_steps, one.steps) == (4, 4)
    assert (two.total_steps, two.steps) == (2, 2)
    assert one.pairs_seen == two.pairs_seen == 32
    assert [h["step"] for h in two.history if "loss" in h] == [1, 2]
    assert all(np.isfinite(h["loss"]) for h in two.history if "loss" in h)


# --------------------------------------------------------------------------- resume in process


class Interrupt(Exception):
    """Raised from ``on_step`` to stop a run right after a step (and its checkpoint)."""


def interrupt_at(step: int):
    def on_step(done: int, total: int, info: dict) -> None:
        if done == step:
            raise Interrupt

    return on_step


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"ensemble": "multihead", "n_members": 2, "grad_accum": 2}, id="multihead"),
        pytest.param(
            {"ensemble": "lora", "n_members": 2, "lora": {"r": 4, "alpha": 8}},
            id="lora",
        ),
        pytest.param(
            {"use_lora": True, "lora": {"r": 4, "alpha": 8}},
            id="use_lora",
        ),
    ],
)
def test_interrupted_run_resumes_to_the_same_weights(
    settings: dict, tiny_qwen2: Path, synthetic_pairs: Pairs, tmp_path: Path
) -> None:
    """In-process counterpart of ``test_resume_after_kill.py`` for more network kinds."""
    pairs = synthetic_pairs(20, seed=6, max_filler=3)
    common = {
        "batch_size": 4,
        "max_steps": 7,
        "checkpoint_every": 2,
        "head_dropout": 0.2,
        "log_every": 1,  # a logged loss averages the steps since the last log, unsaved
    }
    config = FinetuneConfig(backbone=str(tiny_qwen2), **{**BASE, **common, **settings})
    with pytest.raises(Interrupt):
        FinetunedRewardModel(config).fit(
            pairs, checkpoint_dir=tmp_path / "ckpt", on_step=interrupt_at(3)
        )
    resumed = FinetunedRewardModel(config).fit(pairs, checkpoint_dir=tmp_path / "ckpt")
    fresh = FinetunedRewardModel(config).fit(pairs)
    assert resumed.report_.resumed_from_step == 2
    a, b = resumed.network_.state_dict(), fresh.network_.state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert resumed.report_.history == fresh.report_.history


TRIMMING_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_trimming_template_keeps_the_closing_markup(tiny_qwen2: Path) -> None:
    tok = hf_tokenizer(tiny_qwen2)
    tok.chat_template = TRIMMING_CHATML
    rt = RewardTokenizer(tok, max_length=32)
    closing = token_ids(tok, "<|im_end|>\n")
    long_response = "so great answer " * 10
    clean = rt.encode("question cats", long_response.strip())
    assert clean.response_truncated and clean.ids[-len(closing) :] == closing
    padded = rt.encode("question cats", long_response)  # trailing space, trimmed by the template
    assert padded.response_truncated
    assert padded.ids[-len(closing) :] == closing


# --------------------------------------------------------------------------- formats


def test_load_backbone_refuses_pickled_weights(tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 32}))
    (folder / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ModelFormatError, match="safetensors"):
        load_backbone(folder)
    assert (folder / "pytorch_model.bin").read_bytes() == b""


# --------------------------------------------------------------------------- multi-GPU readiness


@pytest.mark.parametrize("backbone", sorted(LAYOUTS))
@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="single"),
        pytest.param({"ensemble": "lora", "n_members": 2, "lora": {"r": 4}}, id="lora"),
    ],
)
def test_every_trainable_parameter_gets_a_gradient(
    backbone: str, settings: dict, request: pytest.FixtureRequest, synthetic_pairs: Pairs
) -> None:
    """DistributedDataParallel stops at the first step if a trainable parameter gets no
    gradient (BERT's pooler, which the heads never read, did)."""
    folder = request.getfixturevalue(backbone)
    config = FinetuneConfig(backbone=str(folder), **{**BASE, **settings})
    tok = RewardTokenizer(hf_tokenizer(folder), config.max_length)
    backbone_model = load_backbone(folder)
    net = build_network(backbone_model, config, default_pooling(backbone_model.config))
    data = EncodedPairs.encode(synthetic_pairs(4, seed=2), tok)
    batch = collate(data, np.arange(4), tok.pad_id, 8)
    net(batch.input_ids, batch.attention_mask).sum().backward()
    unused = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []
    assert not any(".pooler." in f".{n}" for n in net.state_dict())


def test_model_saved_with_a_bert_pooler_still_loads(
    tiny_bert: Path, synthetic_pairs: Pairs, tmp_path: Path
) -> None:
    """Folders written before the unused pooler was dropped hold its weights; they load
    (``drop_pooler`` sets ``pooler = None``, and a strict ``load_state_dict`` passes over
    keys of a child that is None; deleting the attribute would break these folders)."""
    from safetensors.torch import save_file

    pairs = synthetic_pairs(8, seed=4)
    model = fit(tiny_bert, pairs, max_steps=1)
    folder = model.save(tmp_path / "rm")
    weights = load_file(folder / "weights.safetensors")
    assert not any(".pooler." in k for k in weights)
    width = int(json.loads((tiny_bert / "config.json").read_text())["hidden_size"])
    weights["backbone.pooler.dense.weight"] = torch.zeros(width, width)
    weights["backbone.pooler.dense.bias"] = torch.zeros(width)
    save_file(weights, str(folder / "weights.safetensors"))
    manifest = json.loads((folder / "manifest.json").read_text())  # as that version wrote it
    data = (folder / "weights.safetensors").read_bytes()
    manifest["files"]["weights.safetensors"] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    loaded = FinetunedRewardModel.load(folder)
    np.testing.assert_allclose(
        loaded.score(prompts, responses).members,
        model.score(prompts, responses).members,
        atol=1e-6,
    )
