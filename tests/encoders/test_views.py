"""Multi-view encoders: layout, known answers against the single-pooling path, the
``whole`` view's windows, one forward pass per text, and the cache key."""

from __future__ import annotations

import numpy as np
import pytest

from rewardhedge.config import DiversityConfig, EncoderConfig, EnsembleConfig, Pooling
from rewardhedge.encoders import CachedEncoder, HashingEncoder, build_encoder
from rewardhedge.encoders.views import infer_view_slices, view_slices
from rewardhedge.errors import ConfigError

PROMPTS = [
    "What is the capital of France?",
    "Explain photosynthesis briefly.",
    "Tell me a story about a fox.",
    "Describe the sea.",
]
RESPONSES = [
    "The capital of France is Paris.",
    "Plants turn light, water and CO2 into sugar and oxygen.",
    "Once upon a time a clever fox crossed the river at dawn. " * 3,  # 2 windows at len 32
    "The sea is wide and grey and it moves all day long under the wind. " * 8,  # > 3 windows
]
DEFAULT_HASH = ("hash", "hash_bigram", "hash_char")
ALL_TF = ("ctx_l4", "ctx_last", "ctx_low", "ctx_cls", "all_mean", "whole")


# --- layout and config (no model) -----------------------------------------------------


def test_view_slices_follow_config_order_and_widths():
    cfg = EncoderConfig(views=("hash", "ctx_l4", "hash_char", "whole"), dim=16)
    assert view_slices(cfg, 384) == {
        "hash": (0, 16),
        "ctx_l4": (16, 400),
        "hash_char": (400, 416),
        "whole": (416, 800),
    }
    assert infer_view_slices(cfg, 800) == view_slices(cfg, 384)
    assert view_slices(EncoderConfig(), 384) == {}
    with pytest.raises(ConfigError, match=r"features of dim 801 cannot hold encoder\.views"):
        infer_view_slices(cfg, 801)


def test_views_config_parsing_and_errors():
    assert EncoderConfig(views="ctx_l4, hash").views == ("ctx_l4", "hash")
    assert EncoderConfig(views=["ctx_l4"]).views == ("ctx_l4",)
    with pytest.raises(ConfigError, match=r"encoder\.views == 'ctx_l5'.*Did you mean 'ctx_l4'"):
        EncoderConfig(views=("ctx_l5",))
    with pytest.raises(ConfigError, match="names a view twice"):
        EncoderConfig(views=("hash", "hash"))
    with pytest.raises(ConfigError, match=r"encoder\.max_windows == 0"):
        EncoderConfig(views=("whole",), max_windows=0)


def test_the_hashing_kind_rejects_transformer_views():
    with pytest.raises(ConfigError, match=r"encoder\.views has 'ctx_l4', but the hashing encoder"):
        EncoderConfig(kind="hashing", views=("hash", "ctx_l4"))
    # diversity "views" picks the hash views for the hashing kind, the default set otherwise
    hashing = EnsembleConfig(
        encoder=EncoderConfig(kind="hashing"), diversity=DiversityConfig(kind="views")
    )
    assert hashing.encoder.views == ("hash", "hash_bigram", "hash_char")
    assert EnsembleConfig(diversity=DiversityConfig(kind="views")).encoder.views == (
        "ctx_l4",
        "ctx_last",
        "ctx_low",
        "all_mean",
        "hash",
    )


def test_hash_views_concatenate_and_the_first_is_the_plain_hashing_feature():
    plain = HashingEncoder(EncoderConfig(kind="hashing", dim=32))
    multi = HashingEncoder(EncoderConfig(kind="hashing", dim=32, views=DEFAULT_HASH))
    assert multi.dim == 96 and multi.view_slices == {
        "hash": (0, 32),
        "hash_bigram": (32, 64),
        "hash_char": (64, 96),
    }
    x = multi.encode(PROMPTS, RESPONSES)
    assert x.shape == (4, 96) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :32], plain.encode(PROMPTS, RESPONSES))
    # every view has the same prompt block; the response blocks differ
    np.testing.assert_array_equal(x[:, 24:32], x[:, 56:64])
    assert not np.allclose(x[:, :24], x[:, 32:56])
    # bigrams see word order, words alone do not
    swapped = multi.encode(["q"], ["fox the quick"]) - multi.encode(["q"], ["the quick fox"])
    assert np.all(swapped[0, :32] == 0) and np.any(swapped[0, 32:64] != 0)


def test_cache_key_changes_with_views(tmp_path):
    ids = {
        HashingEncoder(EncoderConfig(kind="hashing", dim=32, views=v)).id
        for v in [(), ("hash",), DEFAULT_HASH, ("hash_char", "hash")]
    }
    assert len(ids) == 4
    plain = CachedEncoder(HashingEncoder(EncoderConfig(kind="hashing", dim=32)), tmp_path)
    multi = CachedEncoder(
        HashingEncoder(EncoderConfig(kind="hashing", dim=32, views=DEFAULT_HASH)), tmp_path
    )
    assert multi.view_slices["hash_char"] == (64, 96) and plain.view_slices == {}
    assert multi.encode(PROMPTS, RESPONSES).shape == (4, 96)
    # the same texts in the same cache folder: the plain encoder does not read the views' rows
    assert plain.encode(PROMPTS, RESPONSES).shape == (4, 32)
    assert multi.cache.dir != plain.cache.dir


# --- the real MiniLM ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tf_views():
    """All transformer views plus a hash view, short sequences so the ``whole`` view has work."""
    return build_encoder(
        EncoderConfig(views=(*ALL_TF, "hash"), max_length=32, max_windows=3, dim=16)
    )


@pytest.mark.hf
def test_transformer_view_layout_id_and_norms(tf_views):
    assert tf_views.dim == 6 * 384 + 16
    assert list(tf_views.view_slices) == [*ALL_TF, "hash"]
    assert tf_views.view_slices["whole"] == (5 * 384, 6 * 384)
    assert tf_views.id.endswith(
        ":len32:views=ctx_l4+ctx_last+ctx_low+ctx_cls+all_mean+whole+hash:hash16:win3:norm"
    )
    x = tf_views.encode(PROMPTS, RESPONSES)
    assert x.shape == (4, tf_views.dim) and x.dtype == np.float32
    for start, stop in tf_views.view_slices.values():
        np.testing.assert_allclose(np.linalg.norm(x[:, start:stop], axis=1), 1.0, atol=1e-5)
    # the views really are different representations
    blocks = [x[:, slice(*tf_views.view_slices[v])] for v in ALL_TF[:5]]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not np.allclose(blocks[i], blocks[j], atol=1e-3)


@pytest.mark.hf
def test_views_equal_the_single_pooling_encoder_features(tf_views):
    """Known answers: each view is what the non-view path computes for the same text."""
    from rewardhedge.encoders.transformer import TransformerEncoder

    x = tf_views.encode(PROMPTS, RESPONSES)

    def single(**kw):
        return TransformerEncoder(EncoderConfig(max_length=32, **kw)).encode(PROMPTS, RESPONSES)

    s = tf_views.view_slices
    cases = {
        "ctx_l4": single(pooling="response_mean", layers=4),
        "ctx_last": single(pooling="response_mean", layers=1),
        "ctx_cls": single(pooling="cls", layers=1),
        "all_mean": single(pooling="mean", layers=4),
    }
    for view, expected in cases.items():
        np.testing.assert_allclose(x[:, slice(*s[view])], expected, atol=1e-5, err_msg=view)
    # ctx_low by hand for item 0: mean of hidden layers 2 and 3 over the response tokens
    import torch

    (row,) = tf_views.tokenize(PROMPTS[:1], RESPONSES[:1])
    first = row.index(tf_views.sep_id) + 1
    with torch.inference_mode():
        states = tf_views.model(
            input_ids=torch.tensor([row]),
            token_type_ids=torch.tensor([[0] * first + [1] * (len(row) - first)]),
            attention_mask=torch.ones(1, len(row), dtype=torch.long),
            output_hidden_states=True,
        ).hidden_states
    low = torch.stack(states[2:4]).mean(0)[0].numpy()
    pooled = tf_views._pool_weights(row, Pooling.RESPONSE_MEAN) @ low
    np.testing.assert_allclose(
        x[0, slice(*s["ctx_low"])], pooled / np.linalg.norm(pooled), atol=1e-5
    )
    # packed and padded passes give the same views
    tf_views.packing = False
    try:
        np.testing.assert_allclose(tf_views.encode(PROMPTS, RESPONSES), x, atol=1e-5)
    finally:
        tf_views.packing = True
    hashed = HashingEncoder(EncoderConfig(kind="hashing", dim=16)).encode(PROMPTS, RESPONSES)
    hashed /= np.maximum(np.linalg.norm(hashed, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(x[:, slice(*s["hash"])], hashed, atol=1e-6)


@pytest.mark.hf
def test_whole_view_equals_ctx_l4_when_it_fits_and_averages_windows_when_not():
    from rewardhedge.encoders.transformer import WINDOW_PROMPT_TOKENS, TransformerEncoder

    enc = TransformerEncoder(
        EncoderConfig(views=("ctx_l4", "whole"), max_length=32, max_windows=3, normalize=False)
    )
    x = enc.encode(PROMPTS, RESPONSES)
    ctx, whole = x[:, :384], x[:, 384:]
    np.testing.assert_array_equal(whole[:2], ctx[:2])  # items 0, 1 fit in one sequence
    assert np.abs(whole[2:] - ctx[2:]).max(axis=1).min() > 1e-3
    # counters: item 2 needs one extra window, item 3 more than max_windows allows
    assert enc.n_response_truncated == 2 and enc.n_whole_truncated == 1
    assert enc.n_windows == 1 + 2

    # By hand: windows cover the response in order after the first sequence ...
    p_ids = enc._token_ids(PROMPTS, keep="tail")
    r_ids = enc._token_ids(RESPONSES, keep="head", need=3 * 29 + 16)
    firsts, cuts = enc._assemble(p_ids, r_ids)
    windows = enc.whole_windows(p_ids, r_ids, cuts)
    assert [i for i, _ in windows] == [2, 3, 3]
    for item in (2, 3):
        rows = [firsts[item]] + [row for i, row in windows if i == item]
        spans = [enc._response_span(row) for row in rows]
        covered = [t for row, (a, b) in zip(rows, spans, strict=True) for t in row[a:b]]
        assert covered == r_ids[item][: len(covered)]
        assert all(len(row) <= 32 for row in rows)
        for row, (a, _) in zip(rows[1:], spans[1:], strict=True):
            assert row[0] == enc.cls_id and a - 2 <= WINDOW_PROMPT_TOKENS
            assert row[1 : a - 1] == p_ids[item][len(p_ids[item]) - (a - 2) :]
        if item == 2:
            assert len(covered) == len(r_ids[item])  # all of it in max_windows windows
        else:
            assert len(covered) < len(r_ids[item])  # still cut, and counted above
        # ... and the view is the token-weighted mean of the windows' response means
        plain = TransformerEncoder(
            EncoderConfig(pooling="response_mean", layers=4, max_length=32, normalize=False)
        )
        means = plain.forward_ids(rows, pooling=Pooling.RESPONSE_MEAN)
        weights = np.array([b - a for a, b in spans], dtype=np.float64)
        expected = (weights[:, None] * means).sum(0) / weights.sum()
        np.testing.assert_allclose(whole[item], expected, atol=1e-5)


@pytest.mark.hf
def test_one_forward_pass_per_text_for_all_views():
    """Several views cost the model calls and tokens of one pooling, not one per view."""
    from rewardhedge.encoders.transformer import TransformerEncoder

    prompts, responses = PROMPTS * 6, RESPONSES * 6
    views = ("ctx_l4", "ctx_last", "ctx_low", "ctx_cls", "all_mean", "hash")
    multi = TransformerEncoder(EncoderConfig(views=views, batch_size=4))
    single = TransformerEncoder(EncoderConfig(pooling="response_mean", batch_size=4))
    counts = {}
    for name, enc in (("multi", multi), ("single", single)):
        enc.encode(prompts[:1], responses[:1])  # any one-off probe runs here, not below
        calls = []
        handle = enc.model.register_forward_hook(
            lambda *_, calls=calls: calls.append(1), with_kwargs=True
        )
        try:
            tokens = enc.n_tokens
            enc.encode(prompts, responses)
        finally:
            handle.remove()
        expected_tokens = sum(len(row) for row in enc.tokenize(prompts, responses))
        assert enc.n_tokens - tokens == expected_tokens, name
        counts[name] = len(calls)
    assert counts["multi"] == counts["single"] >= 2
