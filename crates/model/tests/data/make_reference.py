"""Reference logits from Hugging Face transformers (PyTorch, fp32, eager attention) for the
parity tests in crates/model/tests/parity.rs. Run from the repo root:

    python3 -m venv /tmp/ref-venv && /tmp/ref-venv/bin/pip install torch transformers gguf safetensors accelerate
    /tmp/ref-venv/bin/python crates/model/tests/data/make_reference.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]

Writes reference_tiny.json (every position's logits for the committed tiny model, and again with
`rope_scaling` linear x2 and llama3) and, when a GGUF path is given,
reference_smollm2.json (last-position top-20 logits; transformers dequantizes the GGUF with the
`gguf` package and reverses llama.cpp's Q/K permutation on its own, independently of our code).
Made with torch 2.15.0, transformers 5.24.0, gguf 0.19.0, accelerate.
"""
import json, os, shutil, sys, tempfile

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)

TINY_PROMPTS = [[5, 300, 17, 42, 99, 1, 2, 260], [1, 77], [0], [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]]


def logits_all(model, ids):
    with torch.no_grad():
        out = model(torch.tensor([ids]))
    # 7 significant digits: float32 precision, half the fixture size.
    return [[float("%.7g" % x) for x in row] for row in out.logits[0].float().tolist()]


def with_rope_scaling(src, rope_scaling):
    with tempfile.TemporaryDirectory() as tmp:
        for f in os.listdir(src):
            shutil.copy(os.path.join(src, f), tmp)
        cfg = json.load(open(os.path.join(tmp, "config.json")))
        cfg["rope_scaling"] = rope_scaling
        json.dump(cfg, open(os.path.join(tmp, "config.json"), "w"))
        model = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, attn_implementation="eager").eval()
        return [logits_all(model, p) for p in TINY_PROMPTS]


def tiny():
    src = os.path.join(HERE, "tiny")
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, attn_implementation="eager").eval()
    base = [logits_all(model, p) for p in TINY_PROMPTS]
    scaled = with_rope_scaling(src, {"type": "linear", "factor": 2.0})
    # head_dim 8, theta 1e4: wavelengths 6.3, 63, 628, 6283 against 64/4=16 and 64/1=64, so the
    # llama3 rule takes each of its three branches (keep, smooth, divide by factor).
    llama3 = with_rope_scaling(src, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
    # HF's own reading of the tiny tokenizer files (tokenizer.json + tokenizer_config.json).
    tok = AutoTokenizer.from_pretrained(src)
    texts = ["Hello world", "year 2024: 3.14", "naïve café 🙂", "  two  spaces\n\tand a tab", "<|im_start|>user\nhi<|im_end|>", ""]
    encodings = [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in texts]
    chat = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]
    rendered = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)
    out = {"source": "transformers " + transformers.__version__ + ", torch " + torch.__version__,
           "prompts": TINY_PROMPTS, "logits": base, "logits_linear_rope_x2": scaled, "logits_llama3_rope": llama3,
           "special": {"bos": tok.bos_token, "eos": tok.eos_token, "pad": tok.pad_token, "bos_id": tok.bos_token_id, "eos_id": tok.eos_token_id},
           "encodings": encodings, "chat": chat, "chat_rendered": rendered}
    json.dump(out, open(os.path.join(HERE, "reference_tiny.json"), "w"))


SMOL_PROMPTS = [
    "The capital of France is",
    "1, 2, 3, 4,",
    "<|im_start|>user\nWhat is the color of the sky?<|im_end|>\n<|im_start|>assistant\n",
]


def smollm2(gguf_path):
    d, f = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager").eval()
    cases = []
    for text in SMOL_PROMPTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            last = model(torch.tensor([ids])).logits[0, -1].float()
        top = torch.topk(last, 20)
        cases.append({"text": text, "ids": ids, "top_ids": top.indices.tolist(), "top_logits": top.values.tolist()})
    out = {"source": "transformers " + transformers.__version__ + " gguf_file=" + f, "cases": cases}
    json.dump(out, open(os.path.join(HERE, "reference_smollm2.json"), "w"), indent=1)


if __name__ == "__main__":
    tiny()
    if len(sys.argv) > 1:
        smollm2(sys.argv[1])
