"""Quantization quality of exported TinyForge models, measured on text through PyPI onnxruntime.

    python3 test/python/onnx_quality.py REF_FOLDER [CANDIDATE_FOLDER ...] [--json OUT.json]

Each folder holds `model.onnx` + `tokenizer.json` (REF is the fp32 export). Prints, per folder:
file size (and fraction of REF), perplexity on the held-out set `test/fixtures/heldout/` (prose
written for this project + the sample eval answers; sliding windows of 512, stride 256), and
vs REF: greedy 64-token continuations of 10 fixed prompts, token agreement position by position
(free-running: a divergence costs every later token) and teacher-forced top-1 agreement (the
candidate fed REF's continuation).

Goals (exit status 1 when a candidate misses one; the SmolLM2 quality test passes the ones the
current schemes reach): --max-ppl-increase PCT, --min-greedy FRAC (free-running agreement),
--min-forced FRAC (teacher-forced top-1), --max-size FRAC (files vs REF's)."""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from onnx_model import Decoder, dump, metadata, perplexity, session, tokenizer  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
HELDOUT = os.path.join(ROOT, "test", "fixtures", "heldout")


def chat(q: str) -> str:
    return f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


# Ten fixed prompts: five chat turns (the instruct model's use) and five plain-prose openings.
PROMPTS = [
    chat("What is the capital of France? Answer in one sentence."),
    chat("Explain in a few sentences why the sky is blue."),
    chat("Write a short, polite email asking a colleague to review my report by Friday."),
    chat("Give me three tips for keeping a small vegetable garden healthy."),
    chat("How much do I pay each month for the Pro tier?"),
    "The history of the bicycle begins in the early nineteenth century, when",
    "To make a simple tomato soup, you will need",
    "Once upon a time, in a village at the edge of a great forest,",
    "The main difference between weather and climate is that",
    "When you start learning to program, the most important thing is",
]


def heldout_text() -> str:
    with open(os.path.join(HELDOUT, "prose.txt")) as f:
        prose = f.read()
    with open(os.path.join(HELDOUT, "qna_answers.txt")) as f:
        answers = f.read()
    return prose + "\n" + answers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--skip-ppl", action="store_true", help="greedy agreement only (quick A/B)")
    ap.add_argument("--max-ppl-increase", type=float, help="fail if a candidate's perplexity exceeds REF's by more than PCT %%")
    ap.add_argument("--min-greedy", type=float, help="fail if a candidate's free-running greedy agreement is below FRAC")
    ap.add_argument("--min-forced", type=float, help="fail if a candidate's teacher-forced top-1 agreement is below FRAC")
    ap.add_argument("--max-size", type=float, help="fail if a candidate's files exceed FRAC of REF's")
    args = ap.parse_args()
    tok = tokenizer(args.folders[0])
    ids = tok.encode(heldout_text(), add_special_tokens=False).ids
    prompts = [tok.encode(p, add_special_tokens=False).ids for p in PROMPTS]
    print(f"held-out set: {len(ids)} tokens; {len(prompts)} prompts x {args.new_tokens} greedy tokens")
    rows, ref_greedy, ref_size = [], None, None
    for folder in args.folders:
        path = os.path.join(folder, "model.onnx")
        # The weights may sit beside the graph as ONNX external data (`model.onnx_data`).
        size = sum(os.path.getsize(f) for f in (path, path + "_data", path + ".data") if os.path.exists(f))
        ref_size = ref_size or size
        t = time.time()
        sess = session(path, args.threads)
        load_s = time.time() - t
        ppl, n = (float("nan"), 0) if args.skip_ppl else perplexity(sess, ids)
        dec = Decoder(sess)
        greedy = [dec.greedy(p, args.new_tokens) for p in prompts]
        row = {"folder": folder, "bytes": size, "size_vs_ref": size / ref_size, "ppl": ppl, "scored_tokens": n,
               "load_s": load_s, "quantization": metadata(path).get("tinyforge.quantization", "?")}
        if ref_greedy is None:
            ref_greedy = greedy
        else:
            same = sum(a == b for ga, gb in zip(greedy, ref_greedy) for a, b in zip(ga, gb))
            total = sum(len(g) for g in ref_greedy)
            forced = 0
            for p, g in zip(prompts, ref_greedy):
                dec.reset()
                logits = dec.feed(p + g[:-1])[len(p) - 1:]
                forced += sum(int(logits[k].argmax()) == g[k] for k in range(len(g)))
            row.update(greedy_agreement=same / total, teacher_forced_top1=forced / total,
                       identical_continuations=sum(a == b for a, b in zip(greedy, ref_greedy)))
        row["ppl_vs_ref"] = ppl / rows[0]["ppl"] if rows else 1.0
        rows.append(row)
        extra = ""
        if "greedy_agreement" in row:
            extra = (f"  greedy {100 * row['greedy_agreement']:.1f}%  forced {100 * row['teacher_forced_top1']:.1f}%"
                     f"  identical {row['identical_continuations']}/{len(prompts)}")
        print(f"{row['quantization']:>6} {size / 1e6:8.1f} MB ({100 * row['size_vs_ref']:.1f}%)  "
              f"ppl {ppl:.3f} ({100 * (row['ppl_vs_ref'] - 1):+.2f}%){extra}  [{folder}]", flush=True)
        if os.environ.get("SHOW_TEXT"):
            for g in greedy[:3]:
                print("   ", repr(tok.decode(g)))
    if args.json:
        dump({"heldout_tokens": len(ids), "rows": rows}, args.json)
    misses = []
    for row in rows[1:]:
        name = f"{row['quantization']} [{row['folder']}]"
        if args.max_ppl_increase is not None and not (100 * (row["ppl_vs_ref"] - 1) <= args.max_ppl_increase):
            misses.append(f"{name}: perplexity {100 * (row['ppl_vs_ref'] - 1):+.2f}% vs REF (goal <= {args.max_ppl_increase}%)")
        if args.min_greedy is not None and not (row["greedy_agreement"] >= args.min_greedy):
            misses.append(f"{name}: greedy agreement {row['greedy_agreement']:.3f} (goal >= {args.min_greedy})")
        if args.max_size is not None and not (row["size_vs_ref"] <= args.max_size):
            misses.append(f"{name}: size {100 * row['size_vs_ref']:.2f}% of REF (goal <= {100 * args.max_size:.0f}%)")
        if args.min_forced is not None and not (row["teacher_forced_top1"] >= args.min_forced):
            misses.append(f"{name}: teacher-forced top-1 {row['teacher_forced_top1']:.3f} (goal >= {args.min_forced})")
    for m in misses:
        print(f"MISSED {m}", file=sys.stderr)
    if misses:
        sys.exit(1)


if __name__ == "__main__":
    main()
