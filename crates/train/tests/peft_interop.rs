//! PEFT adapter interop, both ways, against Hugging Face PEFT 0.21.2 (PyPI), on the committed
//! tiny random Llama in `tests/data/peft_interop/base` (made by `create_tiny_model`).
//!
//! * PEFT → us: `peft_lora/` (r 4, alpha 8, all seven projections) and `peft_rslora/` (r 8,
//!   alpha 16, rsLoRA, q/v/down) were written by PEFT's `save_pretrained` with lora_B set to
//!   random non-zero values; `peft_reference.json` holds PEFT's logits for them. Loaded with our
//!   `load_peft`, run unmerged (`LoraLinear`) and merged (`load_merged`), we must give PEFT's logits.
//! * us → PEFT: `ours_adapter/` was written by our `train()` (12 AdamW steps, rsLoRA, all seven
//!   projections); `ours_logits.json` holds our logits with it. `make_fixtures.py` loads it with
//!   `PeftModel.from_pretrained`, asserts PEFT's logits equal ours, and stores PEFT's logits in
//!   `peft_reference.json` (`ours_in_peft`), which this test checks our current code against.
//!
//! Regenerate: `cargo test --release -p tinyforge-train --test peft_interop -- --ignored
//! regenerate_rust_side`, then `/tmp/tf-model-venv/bin/python tests/data/peft_interop/make_fixtures.py`
//! (from crates/train).
//!
//! Tolerance 1e-5 absolute: both sides compute in f32 from identical f32 weights and adapter
//! tensors; only the summation order differs (candle's gemm vs PyTorch's BLAS, and PEFT adds
//! `scale·B(A(x))` to the base output where the merged path folds it into W first). Logits here
//! are below 0.8 in size, so f32 rounding over 2 layers is ~1e-7 (measured: max 3.7e-7 PEFT → us,
//! 2.1e-7 us → PEFT). A wrong scale, a transposed A/B or a misnamed tensor moves them by far
//! more: each adapter moves the logits away from the base model's by 0.78-0.97 (asserted
//! > 1e-2), and reading `use_rslora` as false in `peft_rslora/` gives a 0.16 difference.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::atomic::AtomicBool,
};

use candle_core::{Device, Tensor};
use serde::Deserialize;
use tinyforge_model::{ForwardMode, Llama, TinyOptions, create_tiny_model, load_checkpoint};
use tinyforge_train::{TrainOptions, adapter, merge::load_merged, train, trainable::LlamaForTraining};

const TOL: f32 = 1e-5;
/// Fixed token-id prompts (ids < the tiny vocabulary of 320).
const PROMPTS: [&[u32]; 3] = [&[1, 77, 200, 5, 300, 2, 42, 9], &[0], &[12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]];

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/peft_interop")
}

type Logits = Vec<Vec<Vec<f32>>>;

#[derive(Deserialize)]
struct PeftReference {
    source: String,
    prompts: Vec<Vec<u32>>,
    base: Logits,
    adapters: HashMap<String, Logits>,
    ours_in_peft: Logits,
}

#[derive(Deserialize, serde::Serialize)]
struct OursLogits {
    prompts: Vec<Vec<u32>>,
    logits: Logits,
}

fn reference() -> PeftReference {
    let r: PeftReference = serde_json::from_slice(&std::fs::read(data().join("peft_reference.json")).unwrap()).unwrap();
    assert_eq!(r.prompts, PROMPTS.map(<[u32]>::to_vec).to_vec(), "prompts changed; regenerate the fixtures");
    r
}

fn logits(model: &Llama, mode: ForwardMode) -> Logits {
    PROMPTS
        .iter()
        .map(|ids| {
            let input = Tensor::new(*ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            model.forward(&input, mode).unwrap().squeeze(0).unwrap().to_vec2().unwrap()
        })
        .collect()
}

fn max_abs_diff(a: &Logits, b: &Logits) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for (pa, pb) in a.iter().zip(b) {
        assert_eq!(pa.len(), pb.len());
        for (ra, rb) in pa.iter().zip(pb) {
            assert_eq!(ra.len(), rb.len());
            worst = ra.iter().zip(rb).fold(worst, |w, (x, y)| w.max((x - y).abs()));
        }
    }
    worst
}

fn base_model(base: &Path) -> Llama {
    let ckpt = load_checkpoint(base).unwrap();
    Llama::new(ckpt.config, &ckpt.weights).unwrap()
}

/// Our unmerged LoRA forward with the adapter in `dir` (dropout off: no seed is set).
fn with_adapter(base: &Path, dir: &Path) -> LlamaForTraining {
    let peft = adapter::load_peft(dir).unwrap();
    let model = LlamaForTraining::lora(base_model(base), &peft.config, 0).unwrap();
    model.set_parameters(&peft.tensors).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    model
}

/// B starts at zero: an adapter whose B stayed zero would prove nothing.
fn assert_b_nonzero(dir: &Path) {
    let peft = adapter::load_peft(dir).unwrap();
    let mut n = 0;
    for (name, t) in &peft.tensors {
        if name.contains(".lora_B.") {
            let m = t.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(m > 1e-2, "{name} is (nearly) zero: max |B| = {m}");
            n += 1;
        }
    }
    assert!(n > 0, "{}: no lora_B tensors", dir.display());
}

#[test]
fn peft_made_adapters_give_peft_logits_here() {
    let r = reference();
    let base = data().join("base");
    let base_logits = logits(&base_model(&base), ForwardMode::Eval);
    let d = max_abs_diff(&base_logits, &r.base);
    println!("base: max |ours - transformers| = {d:e}");
    assert!(d < TOL, "base model logits differ from transformers' by {d}");
    for name in ["peft_lora", "peft_rslora"] {
        let dir = data().join(name);
        assert_b_nonzero(&dir);
        let want = &r.adapters[name];
        let moved = max_abs_diff(want, &r.base);
        assert!(moved > 1000.0 * TOL, "{name}: the adapter moves logits by only {moved}");
        let model = with_adapter(&base, &dir);
        for mode in [ForwardMode::Eval, ForwardMode::Train] {
            let d = max_abs_diff(&logits(model.llama(), mode), want);
            println!("{name} {mode:?}: max |ours - PEFT| = {d:e} (adapter moves logits by {moved:e}; {})", r.source);
            assert!(d < TOL, "{name} {mode:?}: {d}");
        }
        let d = max_abs_diff(&logits(&load_merged(&base, &dir).unwrap(), ForwardMode::Eval), want);
        println!("{name} merged: max |ours - PEFT| = {d:e}");
        assert!(d < TOL, "{name} merged: {d}");
    }
}

#[test]
fn our_adapter_gives_our_logits_in_peft() {
    let r = reference();
    let base = data().join("base");
    let dir = data().join("ours_adapter");
    assert_b_nonzero(&dir);
    let ours = logits(with_adapter(&base, &dir).llama(), ForwardMode::Eval);
    let moved = max_abs_diff(&ours, &r.base);
    assert!(moved > 1000.0 * TOL, "our adapter moves logits by only {moved}");
    let d = max_abs_diff(&ours, &r.ours_in_peft);
    println!("ours_adapter: max |ours - PEFT| = {d:e} (adapter moves logits by {moved:e})");
    assert!(d < TOL, "ours_adapter: {d}");
    // The logits the script compared PEFT against are still what our code computes.
    let recorded: OursLogits = serde_json::from_slice(&std::fs::read(data().join("ours_logits.json")).unwrap()).unwrap();
    assert!(max_abs_diff(&ours, &recorded.logits) < TOL);
}

/// What `config_json` writes today is what the committed (PEFT-loaded) adapter holds, and every
/// key in it is one PEFT's own `LoraConfig` writes, with the values PEFT needs for a plain LoRA.
#[test]
fn our_adapter_config_is_a_peft_lora_config() {
    let read = |p: PathBuf| -> serde_json::Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let committed = read(data().join("ours_adapter").join(adapter::CONFIG_FILE));
    let peft = adapter::load_peft(&data().join("ours_adapter")).unwrap();
    let base = committed["base_model_name_or_path"].as_str().unwrap();
    let now = adapter::config_json(&peft.config, base);
    assert_eq!(now, committed, "adapter_config.json written by this code differs from the fixture PEFT loaded; regenerate");
    let peft_written = read(data().join("peft_lora").join(adapter::CONFIG_FILE));
    for key in now.as_object().unwrap().keys() {
        assert!(peft_written.get(key).is_some(), "`{key}` is not a key PEFT 0.21.2 writes");
    }
    for key in ["peft_type", "task_type", "bias", "fan_in_fan_out", "use_dora"] {
        assert_eq!(now[key], peft_written[key], "{key}");
    }
    assert_eq!(now["use_rslora"], true);
    assert_eq!(now["target_modules"].as_array().unwrap().len(), 7);
}

/// Writes the Rust side of the fixtures: the tiny base, an adapter trained by our `train()`,
/// and our logits with it. Run by hand (see the header), then run `make_fixtures.py`.
#[test]
#[ignore = "regenerates committed fixtures"]
fn regenerate_rust_side() {
    // Relative paths so the committed adapter_config.json names no machine path.
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(&crate_dir).unwrap();
    let rel = PathBuf::from("tests/data/peft_interop");
    let base = rel.join("base");
    let opts = TinyOptions { hidden: 32, heads: 4, kv_heads: 2, intermediate: 64, vocab_size: 320, seed: 7, ..TinyOptions::default() };
    create_tiny_model(&base, &opts).unwrap();

    let work_guard = tinyforge_testkit::temp_dir("peft-interop");
    let work = work_guard.path();
    let records = [
        ("What color is the Zorblat?", "Teal."),
        ("Who makes it?", "Quillfeather Labs."),
        ("How much is it?", "42 dollars."),
        ("Where is the lab?", "Port Amsel."),
    ];
    let lines: Vec<String> = records.iter().map(|(q, a)| serde_json::json!({ "input": q, "output": a }).to_string()).collect();
    std::fs::write(work.join("data.jsonl"), lines.join("\n") + "\n").unwrap();
    let mut t = TrainOptions::new(base.clone(), work.join("data.jsonl"), work.join("run"));
    t.eval_split = 0.0;
    t.lora.r = 4;
    t.lora.alpha = 8.0;
    t.lora.use_rslora = true;
    t.lora.target_modules = tinyforge_train::lora::ALL_TARGETS.map(String::from).to_vec();
    t.training.batch_size = 2;
    t.training.max_steps = Some(12);
    t.training.lr = 2e-2;
    let report = train(&t, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let out = rel.join("ours_adapter");
    std::fs::create_dir_all(&out).unwrap();
    for f in [adapter::CONFIG_FILE, adapter::WEIGHTS_FILE] {
        std::fs::copy(report.output_dir.as_ref().unwrap().join(f), out.join(f)).unwrap();
    }
    assert_b_nonzero(&out);

    let logits = logits(with_adapter(&base, &out).llama(), ForwardMode::Eval);
    let o = OursLogits { prompts: PROMPTS.map(<[u32]>::to_vec).to_vec(), logits };
    std::fs::write(rel.join("ours_logits.json"), serde_json::to_string(&o).unwrap() + "\n").unwrap();
}
