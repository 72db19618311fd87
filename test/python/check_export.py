"""Independent checks of exported TinyForge decoders with PyPI `onnx` and `onnxruntime`:

    python3 test/python/check_export.py REF.onnx [QUANTIZED.onnx ...]

For every file: `onnx.checker.check_model(full_check=True)` (structure, types and shape
inference) and, through onnxruntime: a prefill, one cached step that must equal the last
position of a full recompute, and a second cached step. For each QUANTIZED file: top-1 agreement
with REF (the fp32 export) at every position of the prompt. Exits 1 with the reason on the first
failure; prints one line per check."""
from __future__ import annotations

import os
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(__file__))
from onnx_model import Decoder, metadata, session  # noqa: E402

PROMPT = [1, 72, 101, 300, 7, 511, 42, 260, 2]


def fail(msg: str) -> None:
    print(f"FAIL: {msg}")
    sys.exit(1)


def check_file(path: str) -> np.ndarray:
    onnx.checker.check_model(path, full_check=True)
    print(f"ok   onnx.checker.check_model(full_check=True): {path}")
    dec = Decoder(session(path, 1))
    vocab = int(dec.sess.get_outputs()[0].shape[2])
    prompt = [t % vocab for t in PROMPT]
    full = dec.feed(prompt)
    spread = float(full.max() - full.min())
    dec.reset()
    dec.feed(prompt[:-1])
    step = dec.feed(prompt[-1:])[-1]
    d = float(np.abs(step - full[-1]).max())
    # fp32: one summation order apart; quantized: the same plus per-block activation rounding of a
    # different kernel path (GEMV vs GEMM).
    tol = 1e-4 * max(1.0, spread) if metadata(path).get("tinyforge.quantization") == "none" else 0.01 * spread
    print(f"{'ok  ' if d <= tol else 'FAIL'} cached step vs full recompute: max diff {d:.2e} (tolerance {tol:.1e}, logit range {spread:.2f})")
    if d > tol:
        fail(f"{path}: cached step differs from the full recompute by {d}")
    nxt = int(step.argmax())
    again = dec.feed([nxt])[-1]
    dec.reset()
    want = dec.feed(prompt + [nxt])[-1]
    d2 = float(np.abs(again - want).max())
    if d2 > tol:
        fail(f"{path}: second cached step differs from the full recompute by {d2}")
    print(f"ok   second cached step vs full recompute: max diff {d2:.2e}")
    return full


def main() -> None:
    if len(sys.argv) < 2:
        fail("usage: check_export.py REF.onnx [QUANTIZED.onnx ...]")
    ref = check_file(sys.argv[1])
    for path in sys.argv[2:]:
        got = check_file(path)
        same = int((got.argmax(-1) == ref.argmax(-1)).sum())
        n = ref.shape[0]
        # int8 must keep every top-1. 4-bit weights on a random tiny model (logit range ~1, near
        # ties everywhere) flip some: measured 7/9 untied, 9/9 tied; SmolLM2 figures are in the
        # crate README.
        need = n if metadata(path).get("tinyforge.quantization") != "int4" else -(-2 * n // 3)
        print(f"{'ok  ' if same >= need else 'FAIL'} top-1 vs fp32: {same}/{n} positions (need {need})  [{path}]")
        if same < need:
            fail(f"{path}: top-1 agrees with fp32 at {same}/{n} positions (need {need})")
    print("all checks passed")


if __name__ == "__main__":
    main()
