"""Rewrites a GGUF with every quantized weight as Q8_0 (the llama.cpp Q8_0 anchor of the export bench).

usage: python gguf_q8_0.py <in.gguf> <out.gguf>   (needs the PyPI `gguf` package; bench-only)

The weights are the input's, dequantized then re-quantized, so both anchors and our ONNX exports
(made from the same GGUF) hold the same values up to each format's rounding. Metadata is copied
as is except general.file_type (7 = MOSTLY_Q8_0).
"""

import os
import sys

import gguf
from gguf import GGMLQuantizationType as Q


def main(src: str, dst: str) -> None:
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    tmp = f"{dst}.tmp"
    writer = gguf.GGUFWriter(tmp, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == "general.file_type":
            writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
            continue
        sub = field.types[1] if len(field.types) > 1 else None
        writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub)
    for t in reader.tensors:
        if t.tensor_type in (Q.F32, Q.F16, Q.Q8_0):
            writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
        else:
            weights = gguf.quants.dequantize(t.data, t.tensor_type)
            writer.add_tensor(t.name, gguf.quants.quantize(weights, Q.Q8_0), raw_dtype=Q.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python gguf_q8_0.py <in.gguf> <out.gguf>")
    main(sys.argv[1], sys.argv[2])
