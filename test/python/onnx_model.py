"""Runs an exported TinyForge decoder (`model.onnx` + `tokenizer.json` in one folder) through
PyPI `onnxruntime`, feeding it the way Optimum / transformers.js do: `input_ids`,
`attention_mask` [b, past + seq], `position_ids`, `past_key_values.{i}.key|value` grown by the
returned `present.*`. Shared by the quality harness, the speed bench and the CI checks."""
from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort


def needs_exact_int8_matmul() -> bool:
    """x86-64 without AVX512-VNNI / AVX-VNNI (the flags in /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool(flags) and "avx2" in flags and not ({"avx512_vnni", "avx_vnni"} & set(flags))


def session(path: str, threads: int = 1) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if needs_exact_int8_matmul():
        # The int8 export's MatMulInteger: ORT's u8 x s8 kernel saturates int16 pair sums on x86
        # CPUs without VNNI; this makes it exact u8 x u8 (as TinyForge's own sessions do there).
        so.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class Decoder:
    """One batch-1 stream over a session, with the KV cache kept between calls."""

    def __init__(self, sess: ort.InferenceSession):
        self.sess = sess
        self.past_names = [i.name for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
        shape = next(i.shape for i in sess.get_inputs() if i.name.startswith("past_key_values."))
        self.kv_heads, self.head_dim = int(shape[1]), int(shape[3])
        self.input_names = {i.name for i in sess.get_inputs()}
        self.reset()

    def reset(self) -> None:
        self.past = {n: np.zeros((1, self.kv_heads, 0, self.head_dim), np.float32) for n in self.past_names}
        self.pos = 0

    def feed(self, ids: list[int]) -> np.ndarray:
        """Appends `ids` to the stream; returns their logits [len(ids), vocab]."""
        n = len(ids)
        feeds = {
            "input_ids": np.array([ids], np.int64),
            "attention_mask": np.ones((1, self.pos + n), np.int64),
        }
        if "position_ids" in self.input_names:
            feeds["position_ids"] = np.arange(self.pos, self.pos + n, dtype=np.int64)[None]
        feeds.update(self.past)
        outs = self.sess.run(None, feeds)
        names = [o.name for o in self.sess.get_outputs()]
        for name, value in zip(names, outs):
            if name.startswith("present."):
                self.past[name.replace("present.", "past_key_values.")] = value
        self.pos += n
        return outs[names.index("logits")][0]

    def greedy(self, prompt: list[int], new_tokens: int) -> list[int]:
        self.reset()
        logits = self.feed(prompt)
        out = [int(logits[-1].argmax())]
        for _ in range(new_tokens - 1):
            out.append(int(self.feed([out[-1]])[-1].argmax()))
        return out


def tokenizer(folder: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def perplexity(sess: ort.InferenceSession, ids: list[int], window: int = 512, stride: int = 256) -> tuple[float, int]:
    """Sliding-window perplexity: each window is a fresh prefill; a token is scored once, in the
    first window where it has at least `window - stride` tokens of context (or from the start)."""
    dec = Decoder(sess)
    nll, count, scored_to = 0.0, 0, 1
    start = 0
    while True:
        end = min(start + window, len(ids))
        dec.reset()
        lp = log_softmax(dec.feed(ids[start:end]))
        for t in range(max(scored_to, start + 1), end):
            nll -= lp[t - start - 1, ids[t]]
            count += 1
        scored_to = end
        if end == len(ids):
            break
        start += stride
    return float(np.exp(nll / count)), count


def metadata(path: str) -> dict:
    import onnx

    m = onnx.load(path, load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def dump(obj, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)
