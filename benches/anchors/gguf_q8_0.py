"""Rewrites a GGUF with every quantized weight as Q8_0 (the llama.cpp Q8_0 anchor of the export bench).

usage: python gguf_q8_0.py <in.gguf> <out.gguf>   (kept for benches/export.mjs; see gguf_retype.py)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_retype import main  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python gguf_q8_0.py <in.gguf> <out.gguf>")
    main(sys.argv[1], sys.argv[2], "q8_0")
