//! The quantization quality goals on the real SmolLM2-135M-Instruct, measured by the Python
//! reference harness (`test/python/onnx_quality.py`, PyPI `onnxruntime`): fp32, int8 and int4
//! exports of the shipped GGUF, perplexity on the held-out text and greedy continuations of 10
//! fixed prompts × 64 tokens against fp32. Fails when a format misses a floor it reached when
//! this was written (onnxruntime 1.30, busy 2-core Xeon):
//! - size: int8 ≤ 28% of the fp32 files (measured 27.4%), int4 ≤ 18% (17.97%, split head);
//! - perplexity: int8 within 2% of fp32 (SmoothQuant, measured +0.74%; 8-bit blocks were
//!   +0.97-1.11%), int4 within 3% (+1.81%; goal 8%);
//! - teacher-forced top-1 agreement: int8 ≥ 92% (SmoothQuant 93.1-93.3%; blocks were 96.1-96.9%),
//!   int4 ≥ 95% (96.4%);
//! - free-running greedy agreement: int8 ≥ 20% (SmoothQuant 23.8-25.9%), int4 ≥ 25% (42.2%). The goals
//!   of 95% / 85% are not reached, and the figure is mostly noise: one early near-tie flips a
//!   token and every later position differs. Computing the RoPE tables in the graph instead of
//!   storing them (fp32: 10/10 continuations identical) moved int8 from 56.9% to 33.6%, and ORT's
//!   int8 activations (`accuracy_level` 4) cost ~20 points, which exact levels buy back only at
//!   a large speed cost (crate README, "Quantization").
//!
//! Ignored by default (~1.5 GB of exports, minutes of scoring):
//! `cargo test --release --target x86_64-unknown-linux-gnu -p tinyforge-infer --test quality_smollm2 -- --ignored --nocapture`
//! (GGUF from `$TINYFORGE_SMOLLM2_GGUF`, else the `foremforge pull` cache).
use std::path::PathBuf;
use std::process::Command;

use tinyforge_onnx::{ExportOptions, Quantization, export_llama};
use tinyforge_tokenizer::Tokenizer;

fn gguf() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TINYFORGE_SMOLLM2_GGUF") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".cache/tinyforge/models/smollm2-135m-instruct/gguf/SmolLM2-135M-Instruct.Q4_1.gguf");
    p.is_file().then_some(p)
}

#[test]
#[ignore = "needs the SmolLM2 GGUF and Python onnxruntime; minutes"]
fn smollm2_int8_and_int4_meet_the_quality_floors() {
    let Some(model) = gguf() else {
        eprintln!("SKIPPED: no SmolLM2 GGUF (set TINYFORGE_SMOLLM2_GGUF or run `foremforge pull --format gguf`)");
        return;
    };
    let ckpt = tinyforge_model::load_checkpoint(&model).unwrap();
    let tok = Tokenizer::from_gguf(&model).unwrap();
    let tmp = tinyforge_testkit::temp_dir("quality-smollm2");
    let mut folders = Vec::new();
    for q in [None, Some(Quantization::Int8), Some(Quantization::Int4)] {
        let dir = tmp.path().join(q.map_or("fp32", Quantization::name));
        std::fs::create_dir_all(&dir).unwrap();
        export_llama(
            &ckpt.config,
            &ckpt.weights,
            &dir.join("model.onnx"),
            &ExportOptions { quantize: q, calibration: q.map(|_| calibration(&tok)) },
        )
        .unwrap();
        tok.save(dir.join("tokenizer.json")).unwrap();
        folders.push(dir);
    }
    let python = std::env::var("TINYFORGE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/python/onnx_quality.py");
    let floors = [("0.28", "2", "0.92", "0.20"), ("0.18", "3", "0.95", "0.25")];
    for (candidate, (size, ppl, forced, greedy)) in folders[1..].iter().zip(floors) {
        let out = Command::new(&python)
            .arg(&script)
            .args([&folders[0], candidate])
            .args(["--max-size", size, "--max-ppl-increase", ppl, "--min-forced", forced, "--min-greedy", greedy])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("{text}");
        assert!(out.status.success(), "a quality floor was missed:\n{text}");
    }
}

/// The int8 export's calibration text in SmolLM2's tokens, as the `exportOnnx` binding passes it.
fn calibration(tok: &Tokenizer) -> tinyforge_onnx::CalibrationText {
    let ids = tok.encode(tinyforge_onnx::CALIBRATION_TEXT, false).unwrap();
    tinyforge_onnx::CalibrationText { name: tinyforge_onnx::CALIBRATION_TEXT_NAME.into(), ids }
}
