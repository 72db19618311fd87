//! `InferenceSession` on a tiny export folder (candle's tiny model, exported fp32, with its
//! tokenizer and chat template): greedy outputs of 16 different prompts submitted at once
//! (continuous batching over 6 slots, prompts prefilled in chunks of 5) are identical to each
//! run alone; cancellation ends a stream early with `cancelled`; bad requests fail at submit.
mod common;

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use tinyforge_generate::{FinishReason, GenerateParams, Generation, Prompt};
use tinyforge_infer::{EngineOptions, Event, InferenceSession, Request};
use tinyforge_model::{TinyOptions, create_tiny_model};
use tinyforge_onnx::{ExportOptions, Quantization, export_llama_path};

/// An export folder laid out as `foremforge export` writes it.
fn export_folder(root: &Path, quantize: Option<Quantization>) -> std::path::PathBuf {
    let base = root.join("base");
    create_tiny_model(&base, &TinyOptions::default()).unwrap();
    let exp = root.join("exp");
    std::fs::create_dir_all(exp.join("onnx")).unwrap();
    let file = if quantize.is_some() { "onnx/model_quantized.onnx" } else { "onnx/model.onnx" };
    export_llama_path(&base, &exp.join(file), &ExportOptions { quantize, ..ExportOptions::default() }).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(base.join(f), exp.join(f)).unwrap();
    }
    exp
}

fn req(text: &str, max_tokens: usize) -> Request {
    Request { prompt: Prompt::Text(text.into()), chat_template: None, params: GenerateParams { max_tokens, ..Default::default() } }
}

#[test]
fn concurrent_greedy_equals_alone() {
    common::init();
    let tmp = common::temp_dir("engine");
    let dir = export_folder(tmp.path(), None);
    let prompts: Vec<String> = (0..16).map(|i| format!("prompt number {i}: {}", "tell me a story ".repeat(i % 5 + 1))).collect();
    let alone: Vec<_> = {
        let s = InferenceSession::load(&dir, &EngineOptions { slots: 1, threads: Some(1), ..Default::default() }).unwrap();
        assert!(s.info().kv_shared);
        prompts.iter().map(|p| s.generate(&req(p, 24)).unwrap()).collect()
    };
    let s = InferenceSession::load(&dir, &EngineOptions { slots: 6, threads: Some(1), prefill_chunk: 5, ..Default::default() }).unwrap();
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    for (i, p) in prompts.iter().enumerate() {
        let tx = tx.clone();
        let mut text = String::new();
        s.submit(
            &req(p, 24),
            Box::new(move |e| match e {
                Event::Step { step, .. } => text += &step.text,
                Event::Done(r) => tx.send((i, text.clone(), r.unwrap())).unwrap(),
            }),
        )
        .unwrap();
    }
    let mut tokens = 0;
    for _ in 0..prompts.len() {
        let (i, streamed, g) = rx.recv().unwrap();
        assert_eq!(g.tokens, alone[i].tokens, "prompt {i}");
        assert_eq!(g.text, alone[i].text, "prompt {i}");
        assert_eq!(streamed, g.text, "prompt {i}: the streamed deltas add up to the text");
        tokens += g.tokens.len();
    }
    eprintln!("16 concurrent requests: {tokens} tokens in {:?}", t0.elapsed());
}

/// Submits `p` on `s`; its final (text, generation) goes to `done` tagged `i`, and `first` gets
/// `i` at its first token.
fn submit_tagged(s: &InferenceSession, i: usize, p: &str, first: &mpsc::Sender<usize>, done: &mpsc::Sender<(usize, Generation)>) {
    let (first, done) = (first.clone(), done.clone());
    let mut seen = false;
    s.submit(
        &req(p, 20),
        Box::new(move |e| match e {
            Event::Step { .. } if !seen => {
                seen = true;
                let _ = first.send(i);
            }
            Event::Step { .. } => {}
            Event::Done(r) => done.send((i, r.unwrap())).unwrap(),
        }),
    )
    .unwrap();
}

#[test]
fn arrivals_during_decode_and_prefill_equal_alone() {
    common::init();
    let tmp = common::temp_dir("engine-arrivals");
    let dir = export_folder(tmp.path(), None);
    // Short prompts (one first chunk, batched with their neighbours, padded to the longest) and
    // long ones (several chunks: later chunks run alone while others decode).
    let prompts: Vec<String> = (0..14)
        .map(|i| {
            if i % 4 == 1 {
                format!("long {i}: {}", "the quick brown fox jumps over the lazy dog ".repeat(4))
            } else {
                format!("short {i} {}", "hey ".repeat(i % 3))
            }
        })
        .collect();
    let alone: Vec<_> = {
        let s = InferenceSession::load(&dir, &EngineOptions { slots: 1, threads: Some(1), ..Default::default() }).unwrap();
        prompts.iter().map(|p| s.generate(&req(p, 20)).unwrap()).collect()
    };
    let opts = EngineOptions { slots: 5, threads: Some(1), prefill_chunk: 8, prefill_budget: 12, ..Default::default() };
    let s = InferenceSession::load(&dir, &opts).unwrap();
    let (first_tx, first_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    // Wave 1: a short and a long prompt. Wave 2 arrives when the short one has its first token
    // (it decodes while the long one is still prefilling chunk by chunk); wave 3 when a wave-2
    // request has its first token; the rest queue for slots and join as others leave.
    submit_tagged(&s, 0, &prompts[0], &first_tx, &done_tx);
    submit_tagged(&s, 1, &prompts[1], &first_tx, &done_tx);
    assert_eq!(first_rx.recv().unwrap(), 0, "the short prompt decodes first");
    for (i, p) in prompts.iter().enumerate().take(6).skip(2) {
        submit_tagged(&s, i, p, &first_tx, &done_tx);
    }
    while first_rx.recv().unwrap() < 2 {}
    for (i, p) in prompts.iter().enumerate().skip(6) {
        submit_tagged(&s, i, p, &first_tx, &done_tx);
    }
    for _ in 0..prompts.len() {
        let (i, g) = done_rx.recv().unwrap();
        assert_eq!(g.tokens, alone[i].tokens, "prompt {i}");
        assert_eq!(g.text, alone[i].text, "prompt {i}");
    }
}

/// Prompts that arrive while nothing decodes all get their first token before any request gets
/// its second, however small the prefill budget, also those submitted while the burst's first
/// prompt is being prefilled (here: while its first-token callback holds the scheduler thread);
/// a burst's last first token then waits for no decode step. Outputs still equal each run alone.
#[test]
fn a_burst_is_prefilled_before_any_decode_step() {
    common::init();
    let tmp = common::temp_dir("engine-burst");
    let dir = export_folder(tmp.path(), None);
    let prompts: Vec<String> =
        (0..6).map(|i| format!("burst {i}: {}", "the quick brown fox jumps over the lazy dog ".repeat(i % 3 + 1))).collect();
    let alone: Vec<_> = {
        let s = InferenceSession::load(&dir, &EngineOptions { slots: 1, threads: Some(1), ..Default::default() }).unwrap();
        prompts.iter().map(|p| s.generate(&req(p, 6)).unwrap()).collect()
    };
    let opts = EngineOptions { slots: 6, threads: Some(1), prefill_chunk: 8, prefill_budget: 4, ..Default::default() };
    let s = InferenceSession::load(&dir, &opts).unwrap();
    // (request, its n-th step) in the order the scheduler emitted them.
    let log = Arc::new(Mutex::new(Vec::new()));
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let mut gate = Some(gate_rx);
    let (done_tx, done_rx) = mpsc::channel();
    for (i, p) in prompts.iter().enumerate() {
        let (entries, done) = (Arc::clone(&log), done_tx.clone());
        let mut held = if i == 0 { gate.take() } else { None };
        let mut n = 0;
        s.submit(
            &req(p, 6),
            Box::new(move |e| match e {
                Event::Step { .. } => {
                    n += 1;
                    entries.lock().unwrap().push((i, n));
                    if let Some(g) = held.take() {
                        g.recv().unwrap();
                    }
                }
                Event::Done(r) => done.send((i, r.unwrap())).unwrap(),
            }),
        )
        .unwrap();
        if i == 0 {
            // Request 0's first token holds the scheduler until the others are submitted.
            while log.lock().unwrap().is_empty() {
                std::thread::yield_now();
            }
        }
    }
    gate_tx.send(()).unwrap();
    for _ in 0..prompts.len() {
        let (i, g) = done_rx.recv().unwrap();
        assert_eq!(g.tokens, alone[i].tokens, "prompt {i}");
    }
    let log = log.lock().unwrap();
    let last_first = log.iter().rposition(|&(_, n)| n == 1).unwrap();
    let first_second = log.iter().position(|&(_, n)| n == 2).unwrap_or(usize::MAX);
    assert_eq!(log.iter().filter(|&&(_, n)| n == 1).count(), prompts.len());
    assert!(last_first < first_second, "a second token came before every first token: {log:?}");
}

#[test]
fn cancel_and_errors() {
    common::init();
    let tmp = common::temp_dir("engine-cancel");
    let dir = export_folder(tmp.path(), Some(Quantization::Int8));
    let s = InferenceSession::load(&dir, &EngineOptions { slots: 2, threads: Some(1), ..Default::default() }).unwrap();
    let (tx, rx) = mpsc::channel();
    let (steps_tx, steps_rx) = mpsc::channel();
    let mut r = req("hello", 1000);
    r.params.sampling.temperature = 1.0;
    r.params.sampling.seed = 5;
    let h = s
        .submit(
            &r,
            Box::new(move |e| match e {
                Event::Step { .. } => {
                    let _ = steps_tx.send(());
                }
                Event::Done(r) => tx.send(r).unwrap(),
            }),
        )
        .unwrap();
    steps_rx.recv().unwrap();
    h.cancel();
    let g = rx.recv().unwrap().unwrap();
    assert_eq!(g.finish_reason, FinishReason::Cancelled);
    assert!(g.tokens.len() < 1000);
    let mut bad = req("x", 0);
    assert_eq!(s.generate(&bad).unwrap_err().code(), "INVALID_ARGUMENT");
    bad = req(&"word ".repeat(5000), 4);
    assert_eq!(s.generate(&bad).unwrap_err().code(), "INVALID_ARGUMENT");
    // Still serving after the errors.
    assert!(s.generate(&req("again", 3)).is_ok());
    s.close();
    assert_eq!(s.generate(&req("closed", 3)).unwrap_err().code(), "SESSION_CLOSED");
    assert_eq!(InferenceSession::load(&tmp.path().join("nope"), &EngineOptions::default()).err().unwrap().code(), "NOT_FOUND");
}

/// The tokenizer parses while the scheduler thread builds the ORT session: its failure must
/// still fail the load, with the file named.
#[test]
fn a_corrupt_tokenizer_fails_the_load_naming_it() {
    common::init();
    let tmp = common::temp_dir("engine-bad-tokenizer");
    let dir = export_folder(tmp.path(), None);
    std::fs::write(dir.join("tokenizer.json"), "{ not json").unwrap();
    let e = InferenceSession::load(&dir, &EngineOptions { slots: 1, threads: Some(1), ..Default::default() }).err().unwrap();
    assert_eq!(e.code(), "ONNX_MODEL_LOAD");
    assert!(e.to_string().contains("tokenizer.json"), "{e}");
}
