"""ViewSlice: some views of a multi-view encoder equal the encoder of just those views."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rewardhedge.config import EncoderConfig
from rewardhedge.encoders import build_encoder
from rewardhedge.encoders.view_slice import ViewSlice
from rewardhedge.errors import ConfigError

PROMPTS = ["How many apples?", "Convert 2 hours to minutes."]
TEXTS = ["Maya now has 43 apples.\nAnswer: 43 apples", "It is 120 minutes. I hope this helps!"]


def test_hash_views_equal_the_encoder_of_those_views():
    cfg = EncoderConfig(kind="hashing", dim=32, views=("hash", "hash_bigram", "hash_char"))
    multi = build_encoder(cfg)
    for views in (("hash_bigram",), ("hash_char", "hash")):
        sliced = ViewSlice(multi, cfg, views)
        alone = build_encoder(replace(cfg, views=views))
        assert sliced.dim == alone.dim == 32 * len(views)
        np.testing.assert_array_equal(sliced.encode(PROMPTS, TEXTS), alone.encode(PROMPTS, TEXTS))


def test_an_unknown_view_is_refused_by_name():
    cfg = EncoderConfig(kind="hashing", dim=8, views=("hash", "hash_bigram"))
    with pytest.raises(ConfigError, match="'hash_char' is not among"):
        ViewSlice(build_encoder(cfg), cfg, "hash_char")


def test_the_first_minilm_view_equals_a_one_view_encoder():
    """What the lab relies on: the single model's ctx_l4 columns of the multi-view pass
    are the features a one-view encoder computes (so its saved model loads with one)."""
    cfg = EncoderConfig(views=("ctx_l4", "ctx_last", "hash"))
    multi = build_encoder(cfg)
    one = build_encoder(replace(cfg, views=("ctx_l4",)))
    sliced = ViewSlice(multi, cfg, "ctx_l4", id=one.id)
    assert sliced.id == one.id and sliced.dim == one.dim
    np.testing.assert_allclose(sliced.encode(PROMPTS, TEXTS), one.encode(PROMPTS, TEXTS), atol=1e-5)
