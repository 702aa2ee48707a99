"""OpenRLHF's remote reward protocol: ``POST /get_reward`` with ``{"query", "prompts", "labels"}``.

OpenRLHF (``--remote_rm_url http://host:port/get_reward``) posts the full
decoded prompt + response of each sample as ``query`` and the prompt alone as
``prompts``, and reads ``rewards`` back (newer versions also ``scores`` and
``extra_logs``, whose per-sample values it logs as batch means). Our models
score (prompt, response) apart, so each query is split where its prompt ends.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardhedge.types import RewardEstimate


def split_queries(
    queries: Sequence[str], prompts: Sequence[str] | None
) -> tuple[list[str], list[str], np.ndarray]:
    """``(prompts, responses, split)`` for the model.

    A query that starts with its prompt is cut there; otherwise (no prompts
    sent, or a prompt that is not a prefix after detokenisation) the whole
    query is scored as the response to an empty prompt. ``split[i]`` is 1.0
    where the cut was made, so a mismatch shows up in the trainer's logs.
    """
    out_p: list[str] = []
    out_r: list[str] = []
    split = np.zeros(len(queries))
    for i, query in enumerate(queries):
        prompt = prompts[i] if prompts is not None else ""
        if prompt and query.startswith(prompt):
            out_p.append(prompt)
            out_r.append(query[len(prompt) :])
            split[i] = 1.0
        else:
            out_p.append("")
            out_r.append(query)
    return out_p, out_r, split


def extra_logs(est: RewardEstimate, split: np.ndarray) -> dict[str, list[float]]:
    """The uncertainty, per sample, under ``extra_logs`` so old clients ignore it."""
    return {
        "rm_mean": est.mean.tolist(),
        "rm_epistemic_std": est.std.tolist(),
        "rm_aleatoric_std": np.sqrt(est.aleatoric).tolist(),
        "rm_prompt_split": split.tolist(),
    }
