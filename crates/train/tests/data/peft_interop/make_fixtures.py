"""PEFT side of the adapter interop fixtures for crates/train/tests/peft_interop.rs.

Run from crates/train, after `cargo test --release -p tinyforge-train --test peft_interop --
--ignored regenerate_rust_side` has written base/ (our create_tiny_model), ours_adapter/ (our
train()) and ours_logits.json:

    /tmp/tf-model-venv/bin/python tests/data/peft_interop/make_fixtures.py

Made with peft 0.21.2, torch 2.15.0, transformers 5.24.0 (PyPI), CPU, fp32, eager attention.

1. PEFT -> us: for two LoraConfigs, get_peft_model on the base, lora_B set to random non-zero
   values (PEFT initializes B to zero, which would make any loader look right), save_pretrained
   into peft_lora/ and peft_rslora/ (PEFT's generated README.md model card is dropped), and
   PEFT's logits recorded. Each saved folder is reloaded with PeftModel.from_pretrained and must
   give the same logits (so the files, not just the in-memory model, hold the adapter).
2. us -> PEFT: ours_adapter/ (written by our code) is loaded with PeftModel.from_pretrained;
   every tensor in our file must land in PEFT's model under the same name with the same values
   (no missing or unexpected keys), PEFT's scaling must be ours (rsLoRA alpha/sqrt(r)), and
   PEFT's logits must equal ours_logits.json within 1e-5. PEFT's logits are recorded too.

Reruns reproduce every file byte for byte except the order of target_modules in PEFT's
adapter_config.json (PEFT stores a Python set; our loader does not depend on the order).

Writes peft_reference.json: prompts, base logits, PEFT logits per adapter, ours_in_peft.
"""
import json, os, shutil, sys

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
# Relative to crates/train (the script chdirs there), as our own adapter_config.json names it,
# so PEFT's base_model_name_or_path holds no machine path.
BASE = "tests/data/peft_interop/base"
TOL = 1e-5
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VARIANTS = {
    "peft_lora": dict(r=4, lora_alpha=8, target_modules=ALL, use_rslora=False),
    "peft_rslora": dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"], use_rslora=True),
}


def base_model():
    return AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32, attn_implementation="eager").eval()


def logits(model, prompts):
    out = []
    with torch.no_grad():
        for ids in prompts:
            # 8 significant digits: enough for f32 at the 1e-5 tolerance, half the file size.
            out.append([[float("%.8g" % x) for x in row] for row in model(torch.tensor([ids])).logits[0].float().tolist()])
    return out


def max_diff(a, b):
    return max(abs(x - y) for pa, pb in zip(a, b) for ra, rb in zip(pa, pb) for x, y in zip(ra, rb))


def make_peft_adapter(name, kwargs, prompts, seed):
    torch.manual_seed(seed)
    cfg = LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.05, bias="none", **kwargs)
    model = get_peft_model(base_model(), cfg)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "lora_B" in pname:
                p.normal_(0.0, 0.3)
    model.eval()
    want = logits(model, prompts)
    out = os.path.join(HERE, name)
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    readme = os.path.join(out, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    again = PeftModel.from_pretrained(base_model(), out).eval()
    d = max_diff(logits(again, prompts), want)
    assert d == 0.0, f"{name}: reloaded adapter gives other logits ({d})"
    print(f"{name}: saved, reload identical")
    return want


def check_ours(prompts):
    path = os.path.join(HERE, "ours_adapter")
    ours = json.load(open(os.path.join(HERE, "ours_logits.json")))
    assert ours["prompts"] == prompts
    model = PeftModel.from_pretrained(base_model(), path).eval()
    cfg = json.load(open(os.path.join(path, "adapter_config.json")))
    # Every tensor of our file is in PEFT's model, by the same name, with the same values.
    file = load_file(os.path.join(path, "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model)
    assert set(file) == set(loaded), (sorted(set(file) ^ set(loaded)))[:5]
    for k, t in file.items():
        assert torch.equal(t, loaded[k]), k
    assert max(t.abs().max().item() for k, t in file.items() if "lora_B" in k) > 1e-2, "B is zero"
    # PEFT read r/alpha/use_rslora as we meant them.
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    want_scale = cfg["lora_alpha"] / (cfg["r"] ** 0.5 if cfg["use_rslora"] else cfg["r"])
    assert abs(layer.scaling["default"] - want_scale) < 1e-12, (layer.scaling, want_scale)
    got = logits(model, prompts)
    d = max_diff(got, ours["logits"])
    print(f"ours_adapter in PEFT: max |PEFT - ours| = {d:.3e}")
    assert d < TOL, d
    return got, d


def main():
    os.chdir(os.path.join(HERE, "..", "..", ".."))
    prompts = json.load(open(os.path.join(HERE, "ours_logits.json")))["prompts"]
    base = logits(base_model(), prompts)
    adapters = {name: make_peft_adapter(name, kw, prompts, seed) for seed, (name, kw) in enumerate(VARIANTS.items())}
    for name, l in adapters.items():
        print(f"{name}: moves logits by {max_diff(l, base):.3e}")
    ours_in_peft, d = check_ours(prompts)
    out = {
        "source": f"peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}",
        "prompts": prompts,
        "base": base,
        "adapters": adapters,
        "ours_in_peft": ours_in_peft,
        "ours_in_peft_max_abs_diff": d,
    }
    with open(os.path.join(HERE, "peft_reference.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
