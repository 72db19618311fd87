"""HF PEFT + PyTorch LoRA training anchor for `npm run bench -- train` (benches/train.mjs).

Usage: python peft_train.py <batches.json> <fp32|bf16|fp32-compile|bf16-compile> <result.json> [max steps]

batches.json (written by benches/train.mjs) holds the GGUF path, the hyperparameters and the
token ids + labels our tokenizer and chat template produced, so this process trains on exactly
the sequences our trainer does (only the order of the batches differs: each side shuffles with
its own generator). Every sequence is the same length, so there is no padding and tokens per
step = batch size x sequence length on both sides.

Same loop as crates/train: AdamW (betas 0.9/0.999, eps 1e-8, decoupled weight decay), global
grad-norm clipping, linear warmup then cosine to zero over the run, loss = mean NLL over the
labelled tokens of the step. `bf16` wraps the forward pass and the loss in
torch.autocast('cpu', dtype=torch.bfloat16); weights, LoRA parameters and optimizer stay fp32.
`-compile` adds `model = torch.compile(model)` after get_peft_model: the first step then includes
the compilation (minutes on 2 cores), which is why the bench also reports whole-job wall time.
Step times cover forward, backward, clipping and the optimizer update; the eval after the
last step is not timed. Writes timings, losses, eval loss and peak RSS (VmHWM) as JSON.
"""
import time

T_START = time.perf_counter()  # before the heavy imports: start-up counts in the job's wall time

import json
import math
import os
import random
import sys
import time


def vm_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    spec_path, mode, out_path = sys.argv[1:4]
    dtype, compiled = mode.removesuffix("-compile"), mode.endswith("-compile")
    # Optional cap on the steps run (for a setting too slow on this CPU to run the whole schedule).
    max_steps = int(sys.argv[4]) if len(sys.argv) > 4 else None
    with open(spec_path) as f:
        spec = json.load(f)
    hp = spec["hyperparameters"]

    import torch
    torch.set_num_threads(hp["threads"])
    import peft
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(hp["seed"])
    t_load = time.perf_counter()
    gguf = spec["gguf"]
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf), dtype=torch.float32)
    model.config.use_cache = False
    lora = LoraConfig(
        r=hp["loraR"],
        lora_alpha=hp["loraAlpha"],
        lora_dropout=hp["loraDropout"],
        target_modules=hp["targetModules"],
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    if compiled:
        model = torch.compile(model)
    model.train()
    load_seconds = time.perf_counter() - t_load
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def tensors(examples):
        ids = torch.tensor([e["ids"] for e in examples], dtype=torch.long)
        labels = torch.tensor([[t if keep else -100 for t, keep in zip(e["ids"], e["labels"])] for e in examples], dtype=torch.long)
        return ids, labels

    def autocast():
        if dtype == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    train = list(spec["train"])
    random.Random(hp["seed"]).shuffle(train)
    bs = hp["batchSize"]
    total = hp["steps"]
    warmup_steps = hp["warmupSteps"]

    def lr_at(step):  # 0-based, as crates/train/src/schedule.rs
        if step < warmup_steps:
            return hp["lr"] * step / max(warmup_steps, 1)
        progress = min((step - warmup_steps) / max(total - warmup_steps, 1), 1.0)
        return hp["lr"] * 0.5 * (1.0 + math.cos(math.pi * progress))

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=hp["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=hp["weightDecay"])
    steps = []
    cursor = 0
    for step in range(total if max_steps is None else min(total, max_steps)):
        if cursor + bs > len(train):
            random.Random(hp["seed"] + step).shuffle(train)
            cursor = 0
        batch = train[cursor:cursor + bs]
        cursor += bs
        ids, labels = tensors(batch)
        t0, c0 = time.perf_counter(), time.process_time()
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with autocast():
            out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, hp["maxGradNorm"]) if hp["maxGradNorm"] > 0 else torch.tensor(0.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        tokens = int(ids.numel())  # no padding: every token is a real one
        loss = out.loss.detach().item()
        steps.append({"step": step + 1, "seconds": seconds, "cpuSeconds": cpu, "tokens": tokens, "loss": loss, "gradNorm": float(grad_norm), "lr": lr_at(step)})
        print(f"  {mode} step {step + 1}/{total}: loss {loss:.4f}, {tokens / seconds:.1f} tok/s", flush=True)

    model.eval()
    nll, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(spec["eval"]), bs):
            ids, labels = tensors(spec["eval"][i:i + bs])
            with autocast():
                logits = model(input_ids=ids).logits.float()
            shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
            shift_labels = labels[:, 1:].reshape(-1)
            nll += float(torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum"))
            n += int((shift_labels != -100).sum())

    result = {
        "engine": f"pytorch-peft-{mode}",
        "precision": dtype,
        "compiled": compiled,
        "startupSeconds": t_load - T_START,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "python": sys.version.split()[0]},
        "threads": torch.get_num_threads(),
        "mkldnnBf16": bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()),
        "loadSeconds": load_seconds,
        "trainableParameters": trainable,
        "steps": steps,
        "evalLoss": nll / max(n, 1),
        "vmHwmKb": vm_kb("VmHWM"),
        "vmRssKb": vm_kb("VmRSS"),
        "jobSeconds": time.perf_counter() - T_START,
    }
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
