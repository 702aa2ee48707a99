"""Encode extra frozen-MiniLM views of the HH pairs, several poolings per forward pass.

Uses the library's TransformerEncoder (its tokenizer, backbone, tokenize()
layout/truncation rule) but runs the forward pass here with
output_hidden_states so one pass yields many poolings. Writes
$RH_EXPLORE_FEATS/<layout>.npz (default /tmp/rh_explore_feats) with arrays
``<pooling>_c`` / ``<pooling>_r`` (chosen / rejected, in file order).

Layouts:
  ctx256, ctx512  library layout [CLS] prompt_tail [SEP] response_head [SEP],
                  token types 1 on the response (exactly as the library)
  resp256         sentence-transformers style [CLS] response [SEP], types 0
  alone256        the library dual's 2nd view: tokenize("", r) = [CLS] [SEP] r [SEP],
                  types 1 on r; also per-layer poolings all_l0..all_l6
  prompt256       sentence-transformers style [CLS] prompt_tail [SEP], types 0
                  (one row per pair; stored as both _c and _r)

Poolings (L = last layer, L4 = mean over the last 4 layers of the per-layer pooling):
  ctx*:   resp_L, resp_L4, prompt_L, cls_L, all_L
  resp/prompt: mean_L, mean_L4, cls_L

Usage: nice -n 15 python bench/explore/encode_views.py --layout resp256
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import FEATS, load

from rewardhedge.config import EncoderConfig
from rewardhedge.encoders import TransformerEncoder


def run(enc, ids, spans, batch_size=32, per_layer=False):
    """spans[i] = (resp_start, resp_end, prompt_start, prompt_end); types 1 on resp if resp_start>1."""
    n = len(ids)
    lengths = np.array([len(r) for r in ids])
    order = np.argsort(-lengths, kind="stable")
    keys = ["resp_L", "resp_L4", "prompt_L", "prompt_L4", "cls_L", "all_L", "all_L4"]
    out = {k: np.zeros((n, enc.hidden_size), np.float32) for k in keys}
    with torch.inference_mode():
        for lo in range(0, n, batch_size):
            idx = order[lo : lo + batch_size]
            w = int(lengths[idx].max())
            b = len(idx)
            input_ids = np.full((b, w), enc.pad_id, np.int64)
            mask = np.zeros((b, w), np.int64)
            types = np.zeros((b, w), np.int64)
            wr = np.zeros((b, w), np.float32)
            wp = np.zeros((b, w), np.float32)
            wa = np.zeros((b, w), np.float32)
            for j, i in enumerate(idx):
                m = len(ids[i])
                input_ids[j, :m] = ids[i]
                mask[j, :m] = 1
                rs, re, ps, pe = spans[i]
                if rs > 1:  # a two-segment item: library token types
                    types[j, rs:m] = 1
                wr[j, rs:re] = 1.0 / max(re - rs, 1)
                wp[j, ps:pe] = 1.0 / max(pe - ps, 1)
                wa[j, :m] = 1.0 / m
            hs = enc.model(
                input_ids=torch.from_numpy(input_ids),
                attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.from_numpy(types),
                output_hidden_states=True,
            ).hidden_states  # tuple of (b, w, h), embeddings + 6 layers
            last4 = torch.stack(hs[-4:])  # (4, b, w, h)
            for name, wt in (("resp", wr), ("prompt", wp), ("all", wa)):
                wt_t = torch.from_numpy(wt)
                out[f"{name}_L"][idx] = torch.einsum("bw,bwh->bh", wt_t, hs[-1]).numpy()
                out[f"{name}_L4"][idx] = torch.einsum("bw,lbwh->bh", wt_t, last4).numpy() / 4
                if per_layer:  # every hidden state (0 = embeddings .. 6 = last)
                    for li, h in enumerate(hs):
                        key = f"{name}_l{li}"
                        if key not in out:
                            out[key] = np.zeros((n, enc.hidden_size), np.float32)
                        out[key][idx] = torch.einsum("bw,bwh->bh", wt_t, h).numpy()
            out["cls_L"][idx] = hs[-1][:, 0].numpy()
            if lo // batch_size % 20 == 0:
                print(f"  {lo}/{n}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--layout", required=True, choices=["ctx256", "ctx512", "resp256", "prompt256", "alone256"]
    )
    args = ap.parse_args()
    max_length = 512 if args.layout == "ctx512" else 256
    enc = TransformerEncoder(EncoderConfig(pooling="response_mean", max_length=max_length))
    pairs = load()
    n = len(pairs)
    cls, sep = enc.cls_id, enc.sep_id
    budget = max_length - 2
    if args.layout.startswith("ctx") or args.layout == "alone256":
        prompts = [p.prompt for p in pairs] * 2
        if args.layout == "alone256":  # the library dual's 2nd view: tokenize("", r)
            prompts = [""] * (2 * n)
        responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        ids = enc.tokenize(prompts, responses)
        spans = []
        for row in ids:
            s = row.index(sep, 1)
            spans.append((s + 1, len(row) - 1, 1, s))
        print(
            f"{args.layout}: {enc.n_items} items, prompt truncated {enc.n_prompt_truncated}, "
            f"response truncated {enc.n_response_truncated}"
        )
    elif args.layout == "resp256":
        responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        body = enc._token_ids(responses, keep="head")
        print(f"resp256: {sum(len(b) > budget for b in body)} responses truncated")
        ids = [[cls, *b[:budget], sep] for b in body]
        spans = [(1, len(r) - 1, 1, len(r) - 1) for r in ids]
    else:
        body = enc._token_ids([p.prompt for p in pairs], keep="tail")
        print(f"prompt256: {sum(len(b) > budget for b in body)} prompts truncated")
        ids = [[cls, *b[-budget:], sep] for b in body]
        spans = [(1, len(r) - 1, 1, len(r) - 1) for r in ids]
    print(f"{len(ids)} items, mean tokens {np.mean([len(r) for r in ids]):.1f}", flush=True)
    t0 = time.perf_counter()
    out = run(enc, ids, spans, per_layer=args.layout in ("alone256", "ctx512"))
    dt = time.perf_counter() - t0
    print(f"{args.layout}: forward {dt:.1f}s ({len(ids) / dt:.1f} items/s)")
    FEATS.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for k, v in out.items():
        if args.layout == "prompt256":
            arrays[f"{k}_c"], arrays[f"{k}_r"] = v, v
        else:
            arrays[f"{k}_c"], arrays[f"{k}_r"] = v[:n], v[n:]
    arrays["seconds"] = np.array(dt)
    arrays["n_items"] = np.array(len(ids))
    np.savez(FEATS / f"{args.layout}.npz", **arrays)


if __name__ == "__main__":
    main()
