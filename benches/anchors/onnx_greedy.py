"""Greedy continuations of test/python/onnx_quality.py's 10 prompts through PyPI onnxruntime, for
benches/greedy-agreement.mjs (which runs the same token ids through llama.cpp).

usage: python onnx_greedy.py --tokenizer tokenizer.json --out OUT.json
           [--model NAME model.onnx]... [--unoptimized NAME model.onnx]... [--check-weights F32.gguf]

Writes {prompts: [token ids], models: {NAME: {greedy, forced?}}}: the prompts tokenized exactly as
onnx_quality.py does; per model 64 greedy tokens per prompt (free-running, no stop at EOS) and, for
every model after the first, its teacher-forced top-1 on the first model's continuation.
`--unoptimized` loads with ORT graph optimizations off (a same-weights, same-runtime perturbation).
`--check-weights` compares the first model's weights with an F32 GGUF as one multiset of values
(the export fuses q/k/v and transposes, so per-tensor names do not line up)."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "python"))
from onnx_model import Decoder, dump, needs_exact_int8_matmul, session, tokenizer  # noqa: E402
from onnx_quality import PROMPTS  # noqa: E402


def unoptimized(path: str, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if needs_exact_int8_matmul():
        so.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def forced_top1(dec: Decoder, prompt: list[int], ref: list[int]) -> list[int]:
    dec.reset()
    logits = dec.feed(prompt + ref[:-1])[len(prompt) - 1:]
    return [int(row.argmax()) for row in logits]


def same_weights(onnx_path: str, gguf_path: str) -> dict:
    import gguf
    import onnx
    from onnx import numpy_helper

    # The model's weights are the initializers named after HF parameters; the rest are small
    # constants the export computes (RoPE tables, shapes).
    m = onnx.load(onnx_path)
    ours = [numpy_helper.to_array(i).ravel() for i in m.graph.initializer if i.name.startswith("model.")]
    theirs = [np.asarray(t.data, np.float32).ravel() for t in gguf.GGUFReader(gguf_path).tensors]
    a, b = np.sort(np.concatenate(ours)), np.sort(np.concatenate(theirs))
    return {"onnx_values": int(a.size), "gguf_values": int(b.size), "identical": bool(a.size == b.size and np.array_equal(a, b))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", nargs=2, action="append", default=[], metavar=("NAME", "ONNX"))
    ap.add_argument("--unoptimized", nargs=2, action="append", default=[], metavar=("NAME", "ONNX"))
    ap.add_argument("--check-weights", metavar="F32_GGUF")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    tok = tokenizer(os.path.dirname(args.tokenizer))
    prompts = [tok.encode(p, add_special_tokens=False).ids for p in PROMPTS]
    runs = [(n, p, False) for n, p in args.model] + [(n, p, True) for n, p in args.unoptimized]
    models, ref = {}, None
    for name, path, plain in runs:
        dec = Decoder(unoptimized(path, args.threads) if plain else session(path, args.threads))
        row = {"path": path, "graph_optimization": "off" if plain else "all"}
        row["greedy"] = [dec.greedy(p, args.new_tokens) for p in prompts]
        if ref is None:
            ref = row["greedy"]
        else:
            row["forced"] = [forced_top1(dec, p, g) for p, g in zip(prompts, ref)]
        models[name] = row
        print(f"onnx {name}: done", file=sys.stderr, flush=True)
    out = {"prompts": prompts, "texts": PROMPTS, "threads": args.threads, "ort_version": ort.__version__, "models": models}
    if args.check_weights and runs:
        out["weights_vs_gguf"] = same_weights(runs[0][1], args.check_weights)
    dump(out, args.out)


if __name__ == "__main__":
    main()
