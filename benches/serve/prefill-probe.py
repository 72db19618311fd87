"""Where a serving forward's time goes, on an exported int8 folder (PyPI onnxruntime, 2 threads).

    python3 benches/serve/prefill-probe.py FOLDER [--work DIR] [--repeats 6] [--qgemm]

The graph is first rewritten as the engine serves it (crates/infer/src/last_logits.rs: the head
runs only for the rows read, through a `logits_rows` input). Then, interleaved, best of
`--repeats`, as process CPU seconds (steadier than wall time on a shared machine; spinning is
off, so CPU time is work) and wall time:
  - a burst of 8 prompts of 50 tokens: 8 forwards of 1x50, 2 of 4x50, one of 8x50, and one
    1x400 prompt;
  - a decode-step proxy: a forward of 1 row and of 32 rows of one token (empty past);
  - ORT's per-op-type profile of the 8x50 forward (MatMulNBits vs GroupQueryAttention vs norms).
Variants of the same weights (speed probes; their quality is for test/python/onnx_quality.py):
  --rowq   every 8-bit MatMulNBits as per-row dynamic uint8 activations (scale absmax/127 over the
           row, zero point 128) x per-column int8 weights through ONNX MatMulInteger (MLAS's
           tiled u8s8 VNNI GEMM), then Cast and the two scales: plain ops, rows stay independent
           (batched logits equal each row run alone, checked here);
  --qgemm  com.microsoft DynamicQuantizeMatMul (one activation scale per tensor: batched rows
           change each other, so not servable as is; the fastest kernel for reference).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "python"))
from onnx_model import needs_exact_int8_matmul  # noqa: E402


def served(src: str, dst: str) -> None:
    """`src` with the head gathered at `logits_rows` [b, 1] (flat row indices), saved at `dst`."""
    m = onnx.load(src)
    g = m.graph
    at = next(i for i, n in enumerate(g.node) if "model.norm.weight" in n.input)
    xn = g.node[at].output[0]
    hidden = next(t.dims[0] for t in g.initializer if t.name == "model.norm.weight")
    for n in g.node:
        for k, i in enumerate(n.input):
            if i == xn:
                n.input[k] = xn + "_rows"
    g.initializer.append(helper.make_tensor(xn + "_shape", TensorProto.INT64, [2], [-1, hidden]))
    g.node.insert(at + 1, helper.make_node("Reshape", [xn, xn + "_shape"], [xn + "_flat"]))
    g.node.insert(at + 2, helper.make_node("Gather", [xn + "_flat", "logits_rows"], [xn + "_rows"], axis=0))
    g.input.append(helper.make_tensor_value_info("logits_rows", TensorProto.INT64, ["batch_size", 1]))
    onnx.save(m, dst, save_as_external_data=True, location=os.path.basename(dst) + "_data")


def save_with_nodes(m: onnx.ModelProto, nodes: list, dst: str) -> None:
    """Replaces the graph's nodes, drops the initializers no node reads, saves with external data."""
    g = m.graph
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    onnx.save(m, dst, save_as_external_data=True, location=os.path.basename(dst) + "_data")


def qgemm(src: str, dst: str) -> None:
    """`src` with each 8-bit MatMulNBits as DynamicQuantizeMatMul (per-column symmetric int8)."""
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    nodes = []
    for n in g.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        if n.op_type != "MatMulNBits" or a.get("bits") != 8:
            nodes.append(n)
            continue
        wq, cs = per_column_int8(inits, n, a)
        base = n.input[1]
        g.initializer.extend(
            [
                numpy_helper.from_array(wq, base + "_i8"),
                numpy_helper.from_array(cs, base + "_cs"),
                numpy_helper.from_array(np.zeros(a["N"], np.int8), base + "_zp"),
            ]
        )
        ins = [n.input[0], base + "_i8", base + "_cs", base + "_zp"]
        nodes.append(helper.make_node("DynamicQuantizeMatMul", ins, list(n.output), name=n.name + "_dq", domain="com.microsoft"))
    save_with_nodes(m, nodes, dst)


def rowq(src: str, dst: str, weights: dict | None = None, keep: frozenset = frozenset()) -> None:
    """`src` with each 8-bit MatMulNBits as per-row uint8 activations x per-column int8 weights.

    `weights` maps a node's weight input name to its own `(int8 [K, N], scales [N])` (the
    smoothquant probe's rescaled fp32 weights); `keep` names weight inputs left as MatMulNBits."""
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    consts = {"rq_eps": np.float32(1e-8), "rq_127": np.float32(127.0), "rq_128": np.float32(128.0), "rq_zp": np.uint8(128)}
    for name, v in consts.items():
        g.initializer.append(numpy_helper.from_array(np.array(v), name))
    g.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), "rq_axes"))
    nodes: list = []
    quant: dict[str, tuple[str, str]] = {}
    for n in g.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        if n.op_type != "MatMulNBits" or a.get("bits") != 8 or n.input[1] in keep:
            nodes.append(n)
            continue
        x = n.input[0]
        if x not in quant:
            # One quantization per activation tensor, shared by the matmuls reading it.
            p = x + "_rq_"
            mk = helper.make_node
            nodes += [
                mk("Abs", [x], [p + "abs"]),
                mk("ReduceMax", [p + "abs", "rq_axes"], [p + "max"], keepdims=1),
                mk("Max", [p + "max", "rq_eps"], [p + "clamped"]),
                mk("Div", [p + "clamped", "rq_127"], [p + "scale"]),
                mk("Div", [x, p + "scale"], [p + "div"]),
                mk("Round", [p + "div"], [p + "round"]),
                mk("Add", [p + "round", "rq_128"], [p + "shift"]),
                mk("Cast", [p + "shift"], [p + "q"], to=TensorProto.UINT8),
            ]
            quant[x] = (p + "q", p + "scale")
        xq, xs = quant[x]
        wq, cs = weights[n.input[1]] if weights else per_column_int8(inits, n, a)
        base = n.input[1]
        g.initializer.extend([numpy_helper.from_array(wq, base + "_i8"), numpy_helper.from_array(cs, base + "_cs")])
        y = n.output[0]
        nodes += [
            helper.make_node("MatMulInteger", [xq, base + "_i8", "rq_zp"], [y + "_i32"]),
            helper.make_node("Cast", [y + "_i32"], [y + "_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [y + "_f", xs], [y + "_rs"]),
            helper.make_node("Mul", [y + "_rs", base + "_cs"], [y]),
        ]
    save_with_nodes(m, nodes, dst)


def per_column_int8(inits: dict, n: onnx.NodeProto, a: dict) -> tuple[np.ndarray, np.ndarray]:
    """A MatMulNBits node's 8-bit blocks dequantized, then symmetric int8 per output column: `[K, N]`, scales `[N]`."""
    k, cols, blk = a["K"], a["N"], a["block_size"]
    q = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32).reshape(cols, -1, blk)
    scale = numpy_helper.to_array(inits[n.input[2]]).reshape(cols, -1, 1)
    zp = 128.0
    if len(n.input) > 3 and n.input[3]:
        zp = numpy_helper.to_array(inits[n.input[3]]).astype(np.float32).reshape(cols, -1, 1)
    w = ((q - zp) * scale).reshape(cols, -1)[:, :k]
    cs = np.abs(w).max(axis=1) / 127.0 + 1e-12
    return np.clip(np.round(w / cs[:, None]), -127, 127).astype(np.int8).T.copy(), cs.astype(np.float32)


def session(path: str, profile: bool = False) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.enable_profiling = profile
    so.log_severity_level = 3
    if needs_exact_int8_matmul():
        so.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feed(s: ort.InferenceSession, b: int, n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    f = {
        "input_ids": rng.integers(100, 20000, (b, n)).astype(np.int64),
        "attention_mask": np.ones((b, n), np.int64),
        "position_ids": np.tile(np.arange(n, dtype=np.int64), (b, 1)),
        "logits_rows": np.array([[r * n + n - 1] for r in range(b)], np.int64),
    }
    for i in s.get_inputs():
        if i.name.startswith("past_key_values."):
            f[i.name] = np.zeros((b, int(i.shape[1]), 0, int(i.shape[3])), np.float32)
    return f


PLANS = {"8 x 1x50": (8, 1, 50), "2 x 4x50": (2, 4, 50), "1 x 8x50": (1, 8, 50), "1 x 1x400": (1, 1, 400), "step 1 row": (1, 1, 1), "step 32 rows": (1, 32, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--work", default="/tmp/tinyforge-prefill-probe")
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--rowq", action="store_true")
    ap.add_argument("--qgemm", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    src = os.path.join(args.folder, "onnx", next(f for f in os.listdir(os.path.join(args.folder, "onnx")) if f.endswith(".onnx")))
    graphs = {"nbits": os.path.join(args.work, "served.onnx")}
    served(src, graphs["nbits"])
    if args.rowq:
        graphs["rowq"] = os.path.join(args.work, "rowq.onnx")
        rowq(graphs["nbits"], graphs["rowq"])
    if args.qgemm:
        graphs["qgemm"] = os.path.join(args.work, "qgemm.onnx")
        qgemm(graphs["nbits"], graphs["qgemm"])
    sess = {k: session(p) for k, p in graphs.items()}
    # Batch invariance: 8 different prompts in one forward vs each alone (the engine's contract).
    for k, s in sess.items():
        f8 = feed(s, 8, 50, seed=7)
        batched = s.run(["logits"], f8)[0].reshape(8, -1)
        alone = []
        for r in range(8):
            f1 = feed(s, 1, 50)
            f1["input_ids"] = f8["input_ids"][r : r + 1]
            alone.append(s.run(["logits"], f1)[0].reshape(-1))
        print(f"{k}: batched 8x50 vs each row alone, max |logit diff| {float(np.abs(batched - np.stack(alone)).max()):.3g}")
    feeds = {k: {p: feed(s, b, n) for p, (_, b, n) in PLANS.items()} for k, s in sess.items()}
    best = {(k, p): (1e9, 1e9) for k in sess for p in PLANS}
    for k, s in sess.items():
        for p in PLANS:
            s.run(["logits"], feeds[k][p])
    for _ in range(args.repeats):
        for k, s in sess.items():
            for p, (reps, _, _) in PLANS.items():
                t, c = time.perf_counter(), time.process_time()
                for _ in range(reps):
                    s.run(["logits"], feeds[k][p])
                w, c = time.perf_counter() - t, time.process_time() - c
                best[(k, p)] = (min(best[(k, p)][0], c), min(best[(k, p)][1], w))
    print(f"onnxruntime {ort.__version__}, 2 threads, load {os.getloadavg()[0]:.1f}; best of {args.repeats}: CPU ms / wall ms")
    for p in PLANS:
        print(f"  {p:13s} " + "   ".join(f"{k}: {best[(k, p)][0] * 1e3:7.1f} / {best[(k, p)][1] * 1e3:7.1f}" for k in sess))
    for k, path in graphs.items():
        s = session(path, profile=True)
        f = feed(s, 8, 50)
        for _ in range(3):
            s.run(["logits"], f)
        agg: dict[str, float] = collections.defaultdict(float)
        with open(s.end_profiling()) as fh:
            for e in json.load(fh):
                if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                    agg[e["args"]["op_name"]] += e["dur"]
        total = sum(agg.values())
        top = sorted(agg.items(), key=lambda kv: -kv[1])[:5]
        print(f"  {k} 8x50 op time: " + ", ".join(f"{op} {100 * v / total:.1f}%" for op, v in top))


if __name__ == "__main__":
    main()
