"""Anthropic HH-RLHF dialogues: one full transcript per side, split into prompt + response.

HH-RLHF stores ``chosen`` and ``rejected`` as whole dialogues that share every
turn but the last assistant reply. A reward model wants the shared context and
the two replies apart, so we cut both at their *last* assistant marker and
insist the text before it is identical (otherwise the pair is not a clean
comparison of two replies to one context).
"""

from __future__ import annotations

from rewardhedge.errors import DataError

HH_ASSISTANT_MARKER = "\n\nAssistant:"
"""The turn marker HH-RLHF puts before every assistant reply."""

MARKER_SHOWN = repr(HH_ASSISTANT_MARKER)
"""The marker as it appears in error messages (escaped, on one line)."""


def _response(full: str, cut: int) -> str:
    rest = full[cut:]
    return rest[1:] if rest.startswith(" ") else rest


def split_hh_dialogue(chosen_full: str, rejected_full: str) -> tuple[str, str, str]:
    """Split two HH-RLHF dialogues at their last ``"\\n\\nAssistant:"`` turn.

    Args:
        chosen_full: The whole preferred dialogue.
        rejected_full: The whole dispreferred dialogue.

    Returns:
        ``(prompt, chosen, rejected)``: the prompt is the shared text up to and
        including the last marker; each response is the rest, with exactly one
        leading space removed if present. Responses may come back empty; the
        loaders reject those rows, this function does not.

    Raises:
        DataError: ``field="chosen"``/``"rejected"`` when that text has no
            marker; ``field="rejected"`` when the two dialogues differ before
            their last marker.

    Example:
        >>> split_hh_dialogue("\\n\\nHuman: hi\\n\\nAssistant: hello",
        ...                   "\\n\\nHuman: hi\\n\\nAssistant: go away")
        ('\\n\\nHuman: hi\\n\\nAssistant:', 'hello', 'go away')
    """
    cuts = []
    for name, text in (("chosen", chosen_full), ("rejected", rejected_full)):
        at = text.rfind(HH_ASSISTANT_MARKER)
        if at < 0:
            raise DataError(f"field '{name}' has no {MARKER_SHOWN} turn", field=name)
        cuts.append(at + len(HH_ASSISTANT_MARKER))
    cut_c, cut_r = cuts
    prompt = chosen_full[:cut_c]
    if cut_c != cut_r or rejected_full[:cut_r] != prompt:
        raise DataError(
            f"chosen and rejected dialogues differ before the last {MARKER_SHOWN} turn",
            field="rejected",
        )
    return prompt, _response(chosen_full, cut_c), _response(rejected_full, cut_r)
