//! Throughput of concurrent greedy requests on one `InferenceSession` (8 slots): total generated
//! tokens per second with 1, 4 and 8 requests submitted at once, on `$TINYFORGE_BENCH_EXPORT`
//! (else a tiny fp32 export made here). With `step` one forward over all slots, more requests
//! share each weight read, so the 4- and 8-request rates should exceed the 1-request rate.
//! Run with `cargo test --release --target x86_64-unknown-linux-gnu -p tinyforge-infer --test bench_batch -- --nocapture`.
mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use tinyforge_generate::{GenerateParams, Prompt};
use tinyforge_infer::{EngineOptions, Event, InferenceSession, Request};
use tinyforge_model::{TinyOptions, create_tiny_model};
use tinyforge_onnx::{ExportOptions, export_llama_path};

fn tiny_export(root: &Path) -> PathBuf {
    let base = root.join("base");
    create_tiny_model(&base, &TinyOptions::default()).unwrap();
    let exp = root.join("exp");
    std::fs::create_dir_all(exp.join("onnx")).unwrap();
    export_llama_path(&base, &exp.join("onnx/model.onnx"), &ExportOptions::default()).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(base.join(f), exp.join(f)).unwrap();
    }
    exp
}

/// Submits `n` requests at once; returns (generated tokens, seconds).
fn run(s: &InferenceSession, n: usize, max_tokens: usize) -> (usize, f64) {
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    for i in 0..n {
        let tx = tx.clone();
        let req = Request {
            prompt: Prompt::Text(format!("Story {i}: once upon a time, in a small village by the sea,")),
            chat_template: Some(false),
            params: GenerateParams { max_tokens, ..Default::default() },
        };
        s.submit(
            &req,
            Box::new(move |e| {
                if let Event::Done(r) = e {
                    tx.send(r.unwrap().tokens.len()).unwrap();
                }
            }),
        )
        .unwrap();
    }
    let tokens: usize = (0..n).map(|_| rx.recv().unwrap()).sum();
    (tokens, t0.elapsed().as_secs_f64())
}

#[test]
fn concurrent_requests_tokens_per_second() {
    common::init();
    let tmp = common::temp_dir("bench-batch");
    let dir = std::env::var_os("TINYFORGE_BENCH_EXPORT").map_or_else(|| tiny_export(tmp.path()), PathBuf::from);
    let max_tokens: usize = std::env::var("TINYFORGE_BENCH_TOKENS").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
    let s =
        InferenceSession::load(&dir, &EngineOptions { threads: Some(2), slots: 8, context_len: Some(512), ..Default::default() }).unwrap();
    run(&s, 1, 8); // warm-up
    let counts = [1, 4, 8];
    let mut best = [0.0_f64; 3];
    for _round in 0..3 {
        for (i, &n) in counts.iter().enumerate() {
            let (tokens, secs) = run(&s, n, max_tokens);
            assert!(tokens >= n, "every request generates");
            best[i] = best[i].max(tokens as f64 / secs);
        }
    }
    for (n, r) in counts.iter().zip(&best) {
        eprintln!(
            "{n} concurrent: {r:.1} tok/s total ({:.2}x of 1; best of 3, at most {max_tokens} tokens each, incl. prefill)",
            r / best[0]
        );
    }
}
