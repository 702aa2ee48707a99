"""Where each named view sits in a multi-view encoder's feature vector.

Views are concatenated in ``EncoderConfig.views`` order; a transformer view
is ``hidden`` wide, a hash view ``EncoderConfig.dim`` wide. The layout is a
function of the config and the width alone, so the heads can build per-view
member masks from the config and the feature dimension (see
:func:`infer_view_slices`) without loading the encoder.

Standard library only (no numpy, no torch).
"""

from __future__ import annotations

from rewardhedge.config import HASH_VIEWS, EncoderConfig, View
from rewardhedge.errors import ConfigError


def is_hash_view(view: str) -> bool:
    """Whether ``view`` is built by hashing (no transformer pass)."""
    return View(view) in HASH_VIEWS


def view_slices(config: EncoderConfig, hidden: int) -> dict[str, tuple[int, int]]:
    """``{view: (start, stop)}`` in config order; empty when the config has no views.

    Example:
        >>> cfg = EncoderConfig(views=("ctx_l4", "hash"), dim=8)
        >>> view_slices(cfg, 4)
        {'ctx_l4': (0, 4), 'hash': (4, 12)}
    """
    out: dict[str, tuple[int, int]] = {}
    start = 0
    for view in config.views:
        width = config.dim if is_hash_view(view) else hidden
        out[view] = (start, start + width)
        start += width
    return out


def infer_view_slices(config: EncoderConfig, dim: int) -> dict[str, tuple[int, int]]:
    """The view layout of ``dim``-wide features from an encoder built from ``config``.

    The transformer views' common width is what the hash views leave of ``dim``.

    Raises:
        ConfigError: the config has no views, or ``dim`` cannot be split that way
            (features from another encoder).
    """
    views = config.views
    if not views:
        raise ConfigError(
            "diversity.kind == 'views' needs encoder.views (a multi-view encoder); "
            "the encoder config has none."
        )
    n_hash = sum(is_hash_view(v) for v in views)
    n_tf = len(views) - n_hash
    rest = dim - n_hash * config.dim
    if (n_tf == 0 and rest != 0) or (n_tf > 0 and (rest <= 0 or rest % n_tf)):
        raise ConfigError(
            f"features of dim {dim} cannot hold encoder.views {','.join(views)!r} "
            f"(hash views {config.dim} wide each); were they made by another encoder?"
        )
    return view_slices(config, rest // n_tf if n_tf else 0)


__all__ = ["infer_view_slices", "is_hash_view", "view_slices"]
