"""TransformerEncoder on the real all-MiniLM-L6-v2 (offline, loaded once per module)."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pytest

from rewardhedge.config import EncoderConfig
from rewardhedge.encoders import CachedEncoder, Encoder, build_encoder
from rewardhedge.encoders.truncation import N_SPECIAL, truncate_pair
from rewardhedge.errors import ConfigError

pytestmark = pytest.mark.hf

PROMPTS = [
    "What is the capital of France?",
    "Explain photosynthesis briefly.",
    "Write a haiku about rain.",
    "How do I reverse a list in Python?",
]
RESPONSES = [
    "The capital of France is Paris.",
    "Plants turn light, water and CO2 into sugar and oxygen.",
    "Soft rain on the roof / the gutters hum a low song / puddles hold the sky",
    "Use my_list[::-1] or my_list.reverse() to reverse it in place.",
]


@pytest.fixture(scope="module")
def minilm():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        from rewardhedge.encoders.transformer import TransformerEncoder

        enc = build_encoder(EncoderConfig(kind="minilm", batch_size=4, pooling="response_mean"))
        assert isinstance(enc, TransformerEncoder)
        yield enc


def test_loads_offline_and_embeds(minilm) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert isinstance(minilm, Encoder)
    assert re.fullmatch(r"all-MiniLM-L6-v2@[0-9a-f]{12}:len256:response_mean:L4:norm", minilm.id)
    x = minilm.encode(PROMPTS, RESPONSES)
    assert x.shape == (4, 384) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert minilm.encode([], []).shape == (0, 384)


def test_sorted_batches_restore_order(minilm) -> None:
    prompts = [*PROMPTS, "a much longer prompt " * 20, "hi"]
    responses = [*RESPONSES, "ok " * 50, "a"]
    x = minilm.encode(prompts, responses)
    perm = np.array([5, 2, 0, 4, 1, 3])
    y = minilm.encode([prompts[i] for i in perm], [responses[i] for i in perm])
    np.testing.assert_allclose(y, x[perm], atol=1e-5)


def test_batch_size_invariance(minilm) -> None:
    prompts = [*PROMPTS, "short", "a longer prompt that needs padding " * 5]
    responses = [*RESPONSES, "yes", "padding matters not " * 8]
    x4 = minilm.encode(prompts, responses)
    old = minilm.batch_size
    try:
        minilm.batch_size = 1
        x1 = minilm.encode(prompts, responses)
        minilm.batch_size = 64
        x64 = minilm.encode(prompts, responses)
    finally:
        minilm.batch_size = old
    np.testing.assert_allclose(x1, x4, atol=1e-5)
    np.testing.assert_allclose(x64, x4, atol=1e-5)


def test_response_mean_tells_responses_apart(minilm) -> None:
    prompt = "Is the Earth flat?"
    a, b = minilm.encode([prompt, prompt], ["No, it is round.", "Yes, totally flat."])
    assert np.linalg.norm(a - b) > 0.1 * np.linalg.norm(a)
    # And the prompt is context: the same response reads differently after another prompt.
    c = minilm.encode(["Is the sky green?"], ["No, it is round."])[0]
    assert not np.allclose(a, c, atol=1e-4)


def test_other_poolings(minilm) -> None:
    from rewardhedge.encoders.transformer import TransformerEncoder

    mean = TransformerEncoder(dataclasses.replace(minilm.config, pooling="mean"))
    cls = TransformerEncoder(dataclasses.replace(minilm.config, pooling="cls"))
    assert len({minilm.id, mean.id, cls.id}) == 3
    assert mean.id.endswith(":len256:mean:L4:norm") and cls.id.endswith(":len256:cls:L4:norm")
    xr, xm, xc = (e.encode(PROMPTS[:1], RESPONSES[:1])[0] for e in (minilm, mean, cls))
    assert not np.allclose(xr, xm) and not np.allclose(xm, xc)
    # An empty response falls back to the mean over all tokens.
    np.testing.assert_allclose(
        minilm.encode(["hello there"], [""]), mean.encode(["hello there"], [""]), atol=1e-6
    )


def test_mean_of_last_layers_then_normalised(minilm) -> None:
    import torch

    from rewardhedge.config import Pooling
    from rewardhedge.encoders.transformer import TransformerEncoder

    raw = TransformerEncoder(dataclasses.replace(minilm.config, layers=1, normalize=False))
    assert raw.id.endswith(":len256:response_mean")
    x = minilm.encode(PROMPTS, RESPONSES)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # By hand for the first item: average the last 4 hidden states, pool the response, normalise.
    (row,) = raw.tokenize(PROMPTS[:1], RESPONSES[:1])
    with torch.inference_mode():
        out = raw.model(
            input_ids=torch.tensor([row]),
            token_type_ids=torch.tensor(
                [[0] * (row.index(raw.sep_id) + 1) + [1] * (len(row) - row.index(raw.sep_id) - 1)]
            ),
            attention_mask=torch.ones(1, len(row), dtype=torch.long),
            output_hidden_states=True,
        )
    hidden = torch.stack(out.hidden_states[-4:]).mean(0)[0].numpy()
    pooled = raw._pool_weights(row, Pooling.RESPONSE_MEAN) @ hidden
    np.testing.assert_allclose(x[0], pooled / np.linalg.norm(pooled), atol=1e-5)
    last = raw.encode(PROMPTS[:1], RESPONSES[:1])[0]
    assert not np.allclose(x[0], last / np.linalg.norm(last), atol=1e-3)


def test_dual_pooling_is_context_view_then_response_alone(minilm) -> None:
    from rewardhedge.encoders.transformer import TransformerEncoder

    dual = TransformerEncoder(dataclasses.replace(minilm.config, pooling="dual"))
    mean = TransformerEncoder(dataclasses.replace(minilm.config, pooling="mean"))
    assert dual.dim == 768 and dual.id.endswith(":len256:dual:L4:norm")
    x = dual.encode(PROMPTS, RESPONSES)
    assert x.shape == (4, 768)
    np.testing.assert_allclose(x[:, :384], minilm.encode(PROMPTS, RESPONSES), atol=1e-5)
    np.testing.assert_allclose(x[:, 384:], mean.encode([""] * 4, RESPONSES), atol=1e-5)
    # the second view ignores the prompt entirely
    y = dual.encode(["another prompt entirely"] * 4, RESPONSES)
    np.testing.assert_allclose(y[:, 384:], x[:, 384:], atol=1e-5)
    assert not np.allclose(y[:, :384], x[:, :384], atol=1e-4)


def test_layout_and_truncation_with_the_real_tokenizer(minilm) -> None:
    tok = minilm.tokenizer
    prompt = " ".join(f"turn{i}" for i in range(400))
    response = " ".join(f"word{i}" for i in range(400))
    full_p = tok(prompt, add_special_tokens=False)["input_ids"]
    full_r = tok(response, add_special_tokens=False)["input_ids"]
    before = (minilm.n_items, minilm.n_truncated, minilm.n_prompt_truncated)
    short = minilm.tokenize(["Hi"], ["Hello"])[0]
    (ids,) = minilm.tokenize([prompt], [response])
    assert short[0] == tok.cls_token_id and short.count(tok.sep_token_id) == 2
    assert len(ids) == minilm.max_length
    sep = ids.index(tok.sep_token_id)
    kept_p, kept_r = ids[1:sep], ids[sep + 1 : -1]
    budget = minilm.max_length - N_SPECIAL
    assert kept_p == full_p[-len(kept_p) :]  # the prompt's END
    assert kept_r == full_r[: len(kept_r)]  # the response's START
    assert len(kept_r) >= 0.75 * budget and len(kept_p) == budget // 4
    assert tok.decode(kept_p).endswith("turn399")
    after = (minilm.n_items, minilm.n_truncated, minilm.n_prompt_truncated)
    assert np.subtract(after, before).tolist() == [2, 1, 1]
    # A literal "[SEP]" in a text is plain text, not a segment boundary.
    (lit,) = minilm.tokenize(["a [SEP] b"], ["c"])
    assert lit.count(tok.sep_token_id) == 2


def test_very_long_texts_match_full_tokenization(minilm) -> None:
    # Long texts are cut at a whitespace before tokenizing (speed); the ids must match.
    rng = np.random.default_rng(1)
    words = ["alpha", "beta,", "γάμμα", "日本", "x\n\n", "tab\t", "don't", "e.g."]
    tok = minilm.tokenizer
    for _ in range(3):
        p = " ".join(rng.choice(words, 3000))
        r = " ".join(rng.choice(words, 3000))
        (ids,) = minilm.tokenize([p], [r])
        full_p = tok(p, add_special_tokens=False, verbose=False)["input_ids"]
        full_r = tok(r, add_special_tokens=False, verbose=False)["input_ids"]
        t = truncate_pair(full_p, full_r, minilm.max_length)
        assert ids == [tok.cls_token_id, *t.prompt, tok.sep_token_id, *t.response, tok.sep_token_id]


def test_forward_ids_accepts_plain_ids(minilm) -> None:
    ids = minilm.tokenize(PROMPTS[:2], RESPONSES[:2])
    np.testing.assert_allclose(
        minilm.forward_ids(ids), minilm.encode(PROMPTS[:2], RESPONSES[:2]), atol=1e-6
    )
    plain = minilm.forward_ids([[101, 7592, 2088, 102]])  # no second segment: mean of all
    assert plain.shape == (1, 384) and np.all(np.isfinite(plain))
    with pytest.raises(ValueError, match="empty"):
        minilm.forward_ids([[]])
    with pytest.raises(ValueError, match="at most 512"):
        minilm.forward_ids([[101] * 600])


def test_progress_bar_goes_to_stderr(minilm, capsys: pytest.CaptureFixture[str]) -> None:
    minilm.encode(PROMPTS, RESPONSES, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "texts/s" in err
    minilm.encode(PROMPTS, RESPONSES)
    assert capsys.readouterr().err == ""


def test_cached_minilm_gives_identical_scores(minilm, tmp_path: Path) -> None:
    cached = CachedEncoder(minilm, tmp_path)
    fresh = cached.encode(PROMPTS, RESPONSES)
    again = CachedEncoder(minilm, tmp_path).encode(PROMPTS, RESPONSES)
    assert again.tobytes() == fresh.tobytes()


def test_config_errors(minilm, tmp_path: Path) -> None:
    from rewardhedge.encoders.transformer import TransformerEncoder

    with pytest.raises(ConfigError, match="max_length"):
        TransformerEncoder(EncoderConfig(max_length=1024))
    with pytest.raises(ConfigError, match="not a folder"):
        TransformerEncoder(EncoderConfig(kind="hf", path=str(tmp_path / "missing")))
    pickled = tmp_path / "pickled-model"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ConfigError, match=r"safetensors.*pytorch_model\.bin"):
        TransformerEncoder(EncoderConfig(kind="hf", path=str(pickled)))
    with pytest.raises(ConfigError, match="hashing"):
        TransformerEncoder(EncoderConfig(kind="hashing"))


def test_hf_kind_from_a_local_folder(minilm, tmp_path: Path) -> None:
    folder = tmp_path / "my-encoder"
    folder.mkdir()
    for item in minilm.folder.iterdir():
        if item.is_file():
            (folder / item.name).symlink_to(item)
    enc = build_encoder(
        EncoderConfig(kind="hf", path=str(folder), max_length=128, pooling="response_mean")
    )
    digest = minilm.id.split("@")[1].split(":")[0]
    assert enc.id == f"my-encoder@{digest}:len128:response_mean:L4:norm"
    np.testing.assert_allclose(
        enc.encode(PROMPTS, RESPONSES), minilm.encode(PROMPTS, RESPONSES), atol=1e-5
    )


def test_packed_passes_equal_padded_ones(minilm) -> None:
    prompts = [*PROMPTS, "a much longer prompt that will need many tokens " * 6, "hi"]
    responses = [*RESPONSES, "a long answer " * 20, "ok"]
    assert minilm._packing_works()
    lengths = np.array([len(r) for r in minilm.tokenize(prompts, responses)])
    passes = minilm._passes(lengths)
    assert sum(len(row) for p in passes for row in p) == len(prompts)
    assert any(len(row) > 1 for p in passes for row in p)  # really packed
    packed = minilm.encode(prompts, responses)
    minilm.packing = False
    try:
        padded = minilm.encode(prompts, responses)
    finally:
        minilm.packing = True
    np.testing.assert_allclose(packed, padded, atol=1e-5)


def test_a_dual_pooled_call_of_two_items_is_one_pass(minilm) -> None:
    from rewardhedge.encoders.transformer import TransformerEncoder

    dual = TransformerEncoder(EncoderConfig(kind="minilm", pooling="dual"))
    before = dual.n_pad_tokens
    x = dual.encode(PROMPTS[:2], RESPONSES[:2])
    ids = [row for rows, _ in dual.views(PROMPTS[:2], RESPONSES[:2]) for row in rows]
    lengths = np.array([len(r) for r in ids])
    assert len(dual._passes(lengths)) == 1
    assert len(dual._passes(lengths)[0]) == 1  # four sequences, one row, no padding
    assert dual.n_pad_tokens == before
    one_by_one = np.vstack([dual.encode(PROMPTS[i : i + 1], RESPONSES[i : i + 1]) for i in (0, 1)])
    np.testing.assert_allclose(x, one_by_one, atol=1e-5)


def test_a_model_with_other_positions_falls_back_to_padding(minilm, tmp_path: Path) -> None:
    """RoBERTa numbers positions from pad_id + 1, so packed position ids would
    change its vectors: the probe sees that and the encoder pads instead."""
    import transformers

    from rewardhedge.encoders.transformer import TransformerEncoder

    folder = tmp_path / "tiny-roberta"
    cfg = transformers.RobertaConfig(
        vocab_size=minilm.tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=300,
        pad_token_id=0,
    )
    import torch

    torch.manual_seed(0)
    transformers.RobertaModel(cfg).save_pretrained(folder, safe_serialization=True)
    minilm.tokenizer.save_pretrained(folder)
    enc = TransformerEncoder(
        EncoderConfig(
            kind="hf", path=str(folder), max_length=128, pooling="response_mean", layers=1
        )
    )
    assert not enc._packing_works()
    lengths = np.array([len(r) for r in enc.tokenize(PROMPTS, RESPONSES)])
    assert all(len(row) == 1 for p in enc._passes(lengths) for row in p)
    x = enc.encode(PROMPTS, RESPONSES)
    one_by_one = np.vstack([enc.encode([p], [r]) for p, r in zip(PROMPTS, RESPONSES, strict=True)])
    np.testing.assert_allclose(x, one_by_one, atol=1e-5)
