"""Which MatMulNBits layers flip tokens: per-layer sensitivity to ORT's int8 activations.

    python3 test/python/onnx_sensitivity.py REF_FOLDER CAND_FOLDER --per-layer
    python3 test/python/onnx_sensitivity.py REF_FOLDER CAND_FOLDER --sets "head;head,0,1" [--json OUT]

CAND is a quantized export whose `MatMulNBits` nodes run at `accuracy_level` 4 (activations
quantized to int8 per block inside the kernel). A *group* is one decoder layer's matmuls (`0`,
`1`, ...) or the output `head`; setting a group to `--exact-level` (default 1: f32 activations)
removes its activation rounding only, the weights stay as they are.

--per-layer: each group alone exact; prints teacher-forced top-1 agreement with REF's greedy
  continuations of the 10 fixed prompts (`onnx_quality.PROMPTS`) and the mean KL(REF || CAND)
  over those positions, largest KL first: the ranking of where activation rounding costs most.
--sets: for each `;`-separated set of groups, the same two figures plus free-running greedy
  agreement (the issue's metric) and decode tokens/s of the greedy loop (batch 1, `--threads`).

The edited graph is written beside CAND's `model.onnx` (so its external data resolves) as
`model.sensitivity.onnx` and removed afterwards."""
from __future__ import annotations

import argparse
import os
import re
import sys
import time

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(__file__))
from onnx_model import Decoder, dump, log_softmax, session, tokenizer  # noqa: E402
from onnx_quality import PROMPTS  # noqa: E402

LAYER = re.compile(r"^model\.layers\.(\d+)\.")


def group_of(node: onnx.NodeProto) -> str:
    m = LAYER.match(node.input[1])
    return m.group(1) if m else "head"


def with_exact(cand: str, groups: set[str], level: int) -> str:
    """CAND's graph with `groups` at accuracy_level `level`, saved beside it; returns the path."""
    model = onnx.load(os.path.join(cand, "model.onnx"), load_external_data=False)
    for node in model.graph.node:
        if node.op_type == "MatMulNBits" and group_of(node) in groups:
            for a in node.attribute:
                if a.name == "accuracy_level":
                    a.i = level
    path = os.path.join(cand, "model.sensitivity.onnx")
    onnx.save(model, path)
    return path


def reference(ref: str, prompts: list[list[int]], new_tokens: int):
    dec = Decoder(session(os.path.join(ref, "model.onnx"), 2))
    greedy = [dec.greedy(p, new_tokens) for p in prompts]
    logp = []
    for p, g in zip(prompts, greedy):
        dec.reset()
        logp.append(log_softmax(dec.feed(p + g[:-1])[len(p) - 1:]))
    return greedy, logp


def forced(dec: Decoder, prompts, ref_greedy, ref_logp) -> tuple[float, float]:
    """Teacher-forced top-1 agreement and mean KL(REF || CAND) over REF's continuations."""
    hits = total = 0
    kl = 0.0
    for p, g, lp in zip(prompts, ref_greedy, ref_logp):
        dec.reset()
        cand = log_softmax(dec.feed(p + g[:-1])[len(p) - 1:])
        hits += sum(int(cand[k].argmax()) == g[k] for k in range(len(g)))
        total += len(g)
        kl += float((np.exp(lp) * (lp - cand)).sum())
    return hits / total, kl / total


def measure(path: str, threads: int, prompts, ref_greedy, ref_logp, free_running: bool) -> dict:
    dec = Decoder(session(path, threads))
    top1, kl = forced(dec, prompts, ref_greedy, ref_logp)
    row = {"forced_top1": top1, "kl": kl}
    if free_running:
        new = len(ref_greedy[0])
        dec.greedy(prompts[0], 8)  # warm-up
        t = time.perf_counter()
        greedy = [dec.greedy(p, new) for p in prompts]
        secs = time.perf_counter() - t
        same = sum(a == b for ga, gb in zip(greedy, ref_greedy) for a, b in zip(ga, gb))
        # The prompt prefills (~20 tokens each, one call) are inside the timing: a small bias.
        row.update(greedy=same / sum(len(g) for g in ref_greedy), tok_s=sum(len(g) for g in greedy) / secs)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ref")
    ap.add_argument("cand")
    ap.add_argument("--per-layer", action="store_true")
    ap.add_argument("--sets", help="';'-separated sets of groups (layer indices, 'head', 'all', 'none')")
    ap.add_argument("--exact-level", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--json")
    args = ap.parse_args()
    tok = tokenizer(args.ref)
    prompts = [tok.encode(p, add_special_tokens=False).ids for p in PROMPTS]
    ref_greedy, ref_logp = reference(args.ref, prompts, args.new_tokens)
    model = onnx.load(os.path.join(args.cand, "model.onnx"), load_external_data=False)
    groups = sorted({group_of(n) for n in model.graph.node if n.op_type == "MatMulNBits"}, key=lambda g: (g == "head", g.zfill(4)))
    out: dict = {"ref": args.ref, "cand": args.cand, "exact_level": args.exact_level}
    try:
        if args.per_layer:
            rows = []
            for g in ["none", *groups]:
                row = {"group": g, **measure(with_exact(args.cand, {g}, args.exact_level), args.threads, prompts, ref_greedy, ref_logp, False)}
                rows.append(row)
                print(f"exact {g:>5}: forced {100 * row['forced_top1']:.1f}%  KL {row['kl']:.5f}", flush=True)
            base = rows[0]["kl"]
            print("by KL removed:", " ".join(f"{r['group']}({base - r['kl']:+.5f})" for r in sorted(rows[1:], key=lambda r: r["kl"])))
            out["per_layer"] = rows
        if args.sets:
            rows = []
            for spec in args.sets.split(";"):
                names = {s.strip() for s in spec.split(",") if s.strip()}
                chosen = set(groups) if "all" in names else names - {"none"}
                row = {"set": spec, **measure(with_exact(args.cand, chosen, args.exact_level), args.threads, prompts, ref_greedy, ref_logp, True)}
                rows.append(row)
                print(f"exact [{spec}]: greedy {100 * row['greedy']:.1f}%  forced {100 * row['forced_top1']:.1f}%  KL {row['kl']:.5f}  "
                      f"{row['tok_s']:.1f} tok/s", flush=True)
            out["sets"] = rows
    finally:
        tmp = os.path.join(args.cand, "model.sensitivity.onnx")
        if os.path.exists(tmp):
            os.remove(tmp)
    if args.json:
        dump(out, args.json)


if __name__ == "__main__":
    main()
