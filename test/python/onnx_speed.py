"""Decode and prefill speed of exported TinyForge models through PyPI onnxruntime, contenders
interleaved in one run (the machine is shared: compare ratios, not absolute figures).

    python3 test/python/onnx_speed.py FOLDER [FOLDER ...] [--threads 1,2] [--json OUT.json]

Decode: 127-token prompt, then 128 greedy tokens, batch 1; tokens/s over the 128 steps (prefill
excluded). Two feeding styles: `concat` (Optimum / transformers.js: `present.*` fed back as
`past_key_values.*`, so the cache is copied in and out every step) and, for graphs whose
metadata says `tinyforge.kv_cache` = `shared-buffer`, `shared` (one [1, kv, max_len, hd]
buffer per cache tensor bound as both past input and present output through IOBinding).
Prefill: one 512-token prompt, tokens/s. Load: session creation seconds."""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
from onnx_model import Decoder, dump, metadata, session  # noqa: E402


class SharedDecoder:
    """Batch-1 greedy decoding with the KV cache in preallocated buffers bound as past and present."""

    def __init__(self, sess: ort.InferenceSession, max_len: int):
        self.sess = sess
        past = [i for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
        kv, hd = int(past[0].shape[1]), int(past[0].shape[3])
        self.bufs = {i.name: ort.OrtValue.ortvalue_from_numpy(np.zeros((1, kv, max_len, hd), np.float32)) for i in past}
        self.input_names = {i.name for i in sess.get_inputs()}
        self.vocab = int(sess.get_outputs()[0].shape[2])

    def run(self, ids: list[int], pos: int) -> np.ndarray:
        n = len(ids)
        b = self.sess.io_binding()
        b.bind_cpu_input("input_ids", np.array([ids], np.int64))
        b.bind_cpu_input("attention_mask", np.ones((1, pos + n), np.int64))
        if "position_ids" in self.input_names:
            b.bind_cpu_input("position_ids", np.arange(pos, pos + n, dtype=np.int64)[None])
        b.bind_output("logits")  # first: get_outputs() lists outputs in binding order
        for name, buf in self.bufs.items():
            b.bind_ortvalue_input(name, buf)
            b.bind_ortvalue_output(name.replace("past_key_values.", "present."), buf)
        self.sess.run_with_iobinding(b)
        return b.get_outputs()[0].numpy()[0]

    def greedy(self, prompt: list[int], new_tokens: int) -> tuple[list[int], float]:
        logits = self.run(prompt, 0)
        out = [int(logits[-1].argmax())]
        t = time.perf_counter()
        for k in range(new_tokens):
            out.append(int(self.run([out[-1]], len(prompt) + k)[-1].argmax()))
        return out, time.perf_counter() - t


def concat_decode(sess, prompt, new_tokens):
    dec = Decoder(sess)
    logits = dec.feed(prompt)
    out = [int(logits[-1].argmax())]
    t = time.perf_counter()
    for _ in range(new_tokens):
        out.append(int(dec.feed([out[-1]])[-1].argmax()))
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    prompt = [int(x) for x in rng.integers(100, 10000, 127)]
    long_prompt = [int(x) for x in rng.integers(100, 10000, 512)]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"onnxruntime {ort.__version__}, {cpu}, {os.cpu_count()} CPUs (shared machine: compare ratios)")
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        sessions = []
        for folder in args.folders:
            # A folder holding model.onnx, or the .onnx file itself (an export keeps its weights in
            # <file>_data beside it, which ORT only reads from the model's own directory).
            path = folder if folder.endswith(".onnx") else os.path.join(folder, "model.onnx")
            t = time.perf_counter()
            sess = session(path, threads)
            sessions.append((folder, sess, time.perf_counter() - t, metadata(path)))
        results, tokens = {}, {}
        # Interleave contenders and keep each one's best run, so a burst of load elsewhere on the
        # machine hits one repeat rather than one contender.
        for _ in range(args.repeats):
            for folder, sess, load_s, meta in sessions:
                modes = ["concat"] + (["shared"] if meta.get("tinyforge.kv_cache") == "shared-buffer" else [])
                for mode in modes:
                    if mode == "concat":
                        out, dt = concat_decode(sess, prompt, args.new_tokens)
                    else:
                        out, dt = SharedDecoder(sess, len(prompt) + args.new_tokens + 1).greedy(prompt, args.new_tokens)
                    tokens[(folder, mode)] = out
                    key = (folder, mode)
                    results[key] = max(results.get(key, 0.0), args.new_tokens / dt)
                dec = Decoder(sess)
                t = time.perf_counter()
                dec.feed(long_prompt)
                pf = len(long_prompt) / (time.perf_counter() - t)
                results[(folder, "prefill")] = max(results.get((folder, "prefill"), 0.0), pf)
        for folder, sess, load_s, meta in sessions:
            for mode in ["concat", "shared"]:
                if (folder, mode) not in results:
                    continue
                row = {"folder": folder, "quantization": meta.get("tinyforge.quantization", "?"), "threads": threads,
                       "feed": mode, "decode_tok_s": results[(folder, mode)], "prefill512_tok_s": results[(folder, "prefill")],
                       "load_s": load_s}
                if mode == "shared":
                    row["same_tokens_as_concat"] = tokens[(folder, "shared")] == tokens[(folder, "concat")]
                rows.append(row)
                print(f"{threads} thr  {row['quantization']:>12} {mode:>6}: decode {row['decode_tok_s']:6.1f} tok/s  "
                      f"prefill(512) {row['prefill512_tok_s']:6.0f} tok/s  load {load_s:.2f}s  [{folder}]"
                      + ("" if mode == "concat" else f"  same tokens as concat: {row['same_tokens_as_concat']}"), flush=True)
    if args.json:
        dump({"onnxruntime": ort.__version__, "cpu": cpu, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
