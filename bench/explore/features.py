"""Named feature sets (chosen, rejected) built from cached / explore views.

Naming: views joined by '+'; suffix 'n' = L2-normalised per item (sentence-transformers
style); 'pXr' terms are elementwise products prompt * response (both normalised).
"""

import numpy as np
from common import cached_view, l2n, view

_memo = {}


def base(name, pairs):
    """One view (chosen, rejected), raw."""
    if name in _memo:
        return _memo[name]
    if name == "ctx":  # response mean-pooled in context (library response_mean, cached)
        v = cached_view(pairs, "response_mean")
    elif name == "alone":  # library dual's 2nd view: [CLS][SEP] r [SEP], types 1 (cached)
        v = cached_view(pairs, "mean", alone=True)
    elif name == "full":  # mean over the whole prompt+response sequence (cached)
        v = cached_view(pairs, "mean")
    elif name.startswith("st"):  # ST-style response alone [CLS] r [SEP], types 0
        v = view("resp256", {"st": "all_L", "stL4": "all_L4", "stcls": "cls_L"}[name])
    elif name.startswith("pr"):  # ST-style prompt alone (tail) [CLS] p [SEP]
        v = view("prompt256", {"pr": "all_L", "prL4": "all_L4", "prcls": "cls_L"}[name])
    elif name.startswith("cx"):  # re-encoded context layout poolings
        v = view(
            "ctx256",
            {"cxL4": "resp_L4", "cxcls": "cls_L", "cxp": "prompt_L", "cxall": "all_L"}[name],
        )
    elif name.startswith("aL"):  # library dual 2nd view, mean of the last k layers: aL4, aL2..aL7
        k = int(name[2:])
        cs, rs = zip(*[view("alone256", f"all_l{6 - i}") for i in range(k)], strict=False)
        v = (np.mean(cs, 0), np.mean(rs, 0))
    elif name.startswith("al"):  # library dual 2nd view, one layer: al0..al6
        v = view("alone256", f"all_l{name[2:]}")
    elif name.startswith("c512"):
        v = view("ctx512", {"c512": "resp_L", "c512all": "all_L", "c512cls": "cls_L"}[name])
    else:
        raise KeyError(name)
    _memo[name] = v
    return v


def build(spec, pairs):
    """spec like 'ctxn+stn+pr*stn' -> (xc, xr). 'a*b' = elementwise product of normalised a, b."""
    cs, rs = [], []
    for part in spec.split("+"):
        if "*" in part:
            a, b = part.split("*")
            pa, pb = build(a if a.endswith("n") else a + "n", pairs), build(b, pairs)
            cs.append(pa[0] * pb[0])
            rs.append(pa[1] * pb[1])
            continue
        norm = part.endswith("n") and (
            part[:-1][:2] in ("aL", "al")
            or part[:-1]
            in {
                "ctx",
                "alone",
                "full",
                "st",
                "stL4",
                "stcls",
                "pr",
                "prL4",
                "prcls",
                "cxL4",
                "cxcls",
                "cxp",
                "cxall",
                "c512",
                "c512all",
                "c512cls",
            }
        )
        c, r = base(part[:-1] if norm else part, pairs)
        if norm:
            c, r = l2n(c), l2n(r)
        cs.append(c)
        rs.append(r)
    return np.hstack(cs).astype(np.float32), np.hstack(rs).astype(np.float32)
