//! Decode speed of `InferenceSession` on an export folder given by `$TINYFORGE_BENCH_EXPORT`
//! (skipped without it): prints tok/s for intra-op threads 1/2 × spinning off/on, alternating
//! the configurations so load changes on a shared machine hit them alike. Run with
//! `cargo test --release --target x86_64-unknown-linux-gnu -p tinyforge-infer --test bench_decode -- --nocapture`.
mod common;

use std::path::PathBuf;
use std::time::Instant;

use tinyforge_generate::{GenerateParams, Prompt};
use tinyforge_infer::{EngineOptions, InferenceSession, Request};

#[test]
fn decode_tokens_per_second() {
    let Some(dir) = std::env::var_os("TINYFORGE_BENCH_EXPORT").map(PathBuf::from) else {
        eprintln!("SKIPPED: set TINYFORGE_BENCH_EXPORT to an export folder");
        return;
    };
    common::init();
    let configs = [(1, false), (1, true), (2, false), (2, true)];
    let sessions: Vec<InferenceSession> = configs
        .iter()
        .map(|&(t, spin)| {
            InferenceSession::load(
                &dir,
                &EngineOptions {
                    threads: Some(t),
                    spinning: if spin { tinyforge_infer::Spinning::Always } else { tinyforge_infer::Spinning::Off },
                    slots: 1,
                    ..Default::default()
                },
            )
            .unwrap()
        })
        .collect();
    let n: usize = std::env::var("TINYFORGE_BENCH_TOKENS").ok().and_then(|s| s.parse().ok()).unwrap_or(128);
    let req = Request {
        prompt: Prompt::Text("Once upon a time, in a small village by the sea,".into()),
        chat_template: Some(false),
        params: GenerateParams { max_tokens: n, ..Default::default() },
    };
    let mut best = vec![0.0_f64; configs.len()];
    for _round in 0..3 {
        for (i, s) in sessions.iter().enumerate() {
            let t0 = Instant::now();
            let g = s.generate(&req).unwrap();
            let rate = g.tokens.len() as f64 / t0.elapsed().as_secs_f64();
            best[i] = best[i].max(rate);
        }
    }
    for ((t, spin), r) in configs.iter().zip(&best) {
        eprintln!("threads {t} spinning {spin}: {r:.1} tok/s (best of 3, {n} tokens incl. prefill)");
    }
}
