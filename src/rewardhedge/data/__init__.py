"""Reading preference data: many formats in, validated pairs and items out.

Loaders check every row and say exactly which file, line and field is wrong;
``skip_invalid=True`` turns those errors into a rejects report instead.
"""

from __future__ import annotations

from rewardhedge.data.fields import parse_field_map
from rewardhedge.data.hh import HH_ASSISTANT_MARKER, split_hh_dialogue
from rewardhedge.data.jsonl import read_jsonl_rows, write_json_atomic, write_jsonl_atomic
from rewardhedge.data.loaders import (
    EvalTask,
    load_items,
    load_one_to_many,
    load_pairs,
    load_pools,
    load_rated_items,
    sniff_task,
)
from rewardhedge.data.steps import (
    holds_step_solutions,
    load_step_solutions,
    read_step_solutions,
)

__all__ = [
    "HH_ASSISTANT_MARKER",
    "EvalTask",
    "holds_step_solutions",
    "load_items",
    "load_one_to_many",
    "load_pairs",
    "load_pools",
    "load_rated_items",
    "load_step_solutions",
    "parse_field_map",
    "read_jsonl_rows",
    "read_step_solutions",
    "sniff_task",
    "split_hh_dialogue",
    "write_json_atomic",
    "write_jsonl_atomic",
]
