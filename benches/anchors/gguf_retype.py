"""Rewrites a GGUF with every weight in one type: Q8_0 (the export bench's llama.cpp Q8_0 anchor) or
F32 (the llama.cpp reference of the greedy-agreement bench).

usage: python gguf_retype.py <in.gguf> <out.gguf> q8_0|f32   (needs the PyPI `gguf` package; bench-only)

The weights are the input's, dequantized (then re-quantized for Q8_0). Our ONNX exports dequantize
the same GGUF, so the F32 file holds our fp32 export's values and the Q8_0 file those up to Q8_0's
rounding. Metadata is copied as is except general.file_type. Q8_0 keeps F32/F16/Q8_0 tensors as they
are (the norms are F32; the shipped Q4_1 file's embedding is already Q8_0).
"""

import os
import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

TARGETS = {"q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "f32": gguf.LlamaFileType.ALL_F32}


def retype(t, target: str):
    """(data, raw_dtype) of reader tensor `t` in the target type; raw_dtype None means F32 numpy."""
    if target == "q8_0":
        if t.tensor_type in (Q.F32, Q.F16, Q.Q8_0):
            return t.data, t.tensor_type
        return gguf.quants.quantize(gguf.quants.dequantize(t.data, t.tensor_type), Q.Q8_0), Q.Q8_0
    if t.tensor_type == Q.F32:
        return np.asarray(t.data, np.float32), None
    return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False), None


def main(src: str, dst: str, target: str) -> None:
    if target not in TARGETS:
        sys.exit(f"gguf_retype.py: unknown target type {target!r}; known: {', '.join(TARGETS)}")
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    tmp = f"{dst}.tmp"
    writer = gguf.GGUFWriter(tmp, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == "general.file_type":
            writer.add_file_type(TARGETS[target])
            continue
        sub = field.types[1] if len(field.types) > 1 else None
        writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub)
    for t in reader.tensors:
        data, raw = retype(t, target)
        writer.add_tensor(t.name, data, raw_dtype=raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, dst)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python gguf_retype.py <in.gguf> <out.gguf> q8_0|f32")
    main(*sys.argv[1:])
