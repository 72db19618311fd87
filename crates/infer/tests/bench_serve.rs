//! Serving harness (prints numbers, asserts none): on the export folder `$TINYFORGE_BENCH_EXPORT`
//! (skipped without it), side by side in one run:
//! - single stream: the bare decoder (`OrtDecoder::step` + argmax, no scheduler, no sampler)
//!   against `InferenceSession` generating the same greedy tokens;
//! - closed-loop clients (each submits a 64-token request, waits for it, submits the next):
//!   time to first token p50/p90/p99 and aggregate generated tok/s at 1, 8 and 32 clients, for
//!   several engine configurations (`slots`/`prefill_budget`).
//!
//! Run with `TINYFORGE_BENCH_EXPORT=/tmp/smol-int8 cargo test --release --target
//! x86_64-unknown-linux-gnu -p tinyforge-infer --test bench_serve -- --nocapture`
//! (`TINYFORGE_BENCH_LOAD_ONLY=1` runs only the clients; `TINYFORGE_BENCH_CONFIGS="8:1,8:512,32:512"` picks slots:budget pairs; `32:256:all` runs the
//! graph as exported, with logits for every position).
mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use tinyforge_generate::{Decoder, GenerateParams, Prompt, argmax};
use tinyforge_infer::{DecoderOptions, EngineOptions, Event, ExportFolder, InferenceSession, OrtDecoder, Request};

const THREADS: usize = 2;
const NEW_TOKENS: usize = 64;

const PROSE: &str = "The history of the printing press begins in the workshops of fifteenth century Europe, where \
goldsmiths and merchants experimented with movable metal type, oil based inks and screw presses borrowed from wine \
makers. Within fifty years presses were running in more than two hundred cities, and the price of a book fell so far \
that students, clerks and craftsmen could own one.";

/// A short prompt of 20 to 60 tokens, different per request.
fn prompt(n: usize) -> String {
    let words: Vec<&str> = PROSE.split(' ').collect();
    let start = (n * 7) % 20;
    let len = 15 + (n * 13) % 30;
    words.iter().cycle().skip(start).take(len).copied().collect::<Vec<_>>().join(" ")
}

fn request(n: usize) -> Request {
    Request {
        prompt: Prompt::Text(prompt(n)),
        chat_template: Some(false),
        params: GenerateParams { max_tokens: NEW_TOKENS, ..Default::default() },
    }
}

struct Load {
    ttft_ms: Vec<f64>,
    tokens: usize,
    secs: f64,
}

/// `clients` closed-loop clients, `per_client` requests each.
fn closed_loop(s: &InferenceSession, clients: usize, per_client: usize) -> Load {
    let (tx, rx) = mpsc::channel::<(usize, Option<f64>, usize)>();
    let submit = |c: usize, k: usize| {
        let tx = tx.clone();
        let t0 = Instant::now();
        let mut first = None;
        s.submit(
            &request(c * 1000 + k),
            Box::new(move |e| match e {
                Event::Step { .. } => {
                    first.get_or_insert_with(|| t0.elapsed().as_secs_f64() * 1e3);
                }
                Event::Done(r) => tx.send((c, first, r.map_or(0, |g| g.tokens.len()))).unwrap(),
            }),
        )
        .unwrap();
    };
    let t0 = Instant::now();
    let mut sent = vec![1; clients];
    for c in 0..clients {
        submit(c, 0);
    }
    let mut load = Load { ttft_ms: Vec::new(), tokens: 0, secs: 0.0 };
    for _ in 0..clients * per_client {
        let (c, ttft, n) = rx.recv().unwrap();
        load.ttft_ms.extend(ttft);
        load.tokens += n;
        if sent[c] < per_client {
            submit(c, sent[c]);
            sent[c] += 1;
        }
    }
    load.secs = t0.elapsed().as_secs_f64();
    load
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Greedy decode of `n` tokens on the bare decoder; returns decode tok/s (prefill excluded).
fn bare_decode(d: &mut OrtDecoder, ids: &[u32], n: usize) -> f64 {
    d.release(0);
    let mut logits = d.prefill(0, ids).unwrap();
    let t0 = Instant::now();
    for _ in 0..n {
        let t = argmax(&logits);
        logits = d.step(&[(0, t)]).unwrap();
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Decode tok/s of one engine request, timed from its first token to its last.
fn engine_decode(s: &InferenceSession, req: &Request) -> f64 {
    let (tx, rx) = mpsc::channel();
    let mut times = Vec::new();
    s.submit(
        req,
        Box::new(move |e| match e {
            Event::Step { step, .. } if step.token.is_some() => times.push(Instant::now()),
            Event::Step { .. } => {}
            Event::Done(_) => tx.send(std::mem::take(&mut times)).unwrap(),
        }),
    )
    .unwrap();
    let times = rx.recv().unwrap();
    (times.len() - 1) as f64 / (times[times.len() - 1] - times[0]).as_secs_f64()
}

fn single_stream(dir: &Path) {
    let folder = ExportFolder::open(dir).unwrap();
    let dopts = DecoderOptions { slots: 1, context_len: 512, threads: Some(THREADS), ..Default::default() };
    let mut d = OrtDecoder::load(&folder.model_path, folder.shape, &dopts).unwrap();
    let s = InferenceSession::load(dir, &EngineOptions { threads: Some(THREADS), slots: 8, context_len: Some(512), ..Default::default() })
        .unwrap();
    let n = 128;
    let req = Request {
        prompt: Prompt::Text(PROSE.into()),
        chat_template: Some(false),
        params: GenerateParams { max_tokens: n + 1, ..Default::default() },
    };
    let ids = s.tokenizer().encode(PROSE, false).unwrap();
    let (mut bare, mut eng) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        bare.push(bare_decode(&mut d, &ids, n));
        eng.push(engine_decode(&s, &req));
    }
    let (b, e) = (pct(&mut bare, 0.5), pct(&mut eng, 0.5));
    eprintln!("single stream decode, median of 5 x {n} tokens: bare decoder {b:.1} tok/s, engine {e:.1} tok/s ({:.3}x)", e / b);
}

/// Milliseconds for `rows` prompts prefilled one forward each, then all in one forward, then
/// in groups of 2 and 4; and for a decode step at 1, 8 and 32 rows.
/// `all_logits` runs the graph as exported (logits for every position) instead of the served
/// rewrite that computes only the rows read.
fn prefill_and_step(dir: &Path, all_logits: bool) {
    let folder = ExportFolder::open(dir).unwrap();
    let dopts = DecoderOptions { slots: 32, context_len: 512, threads: Some(THREADS), all_logits, ..Default::default() };
    let mut d = OrtDecoder::load(&folder.model_path, folder.shape, &dopts).unwrap();
    let tag = if all_logits { "all positions' logits" } else { "logits of the rows read" };
    let tok = folder.tokenizer().unwrap();
    let prompts: Vec<Vec<u32>> = (0..8).map(|n| tok.encode(&prompt(n), false).unwrap()).collect();
    let total: usize = prompts.iter().map(Vec::len).sum();
    let time = |d: &mut OrtDecoder, group: usize| {
        for s in 0..8 {
            d.release(s);
        }
        let t0 = Instant::now();
        for (g, chunk) in prompts.chunks(group).enumerate() {
            let rows: Vec<(usize, &[u32])> = chunk.iter().enumerate().map(|(i, p)| (g * group + i, p.as_slice())).collect();
            d.prefill_rows(&rows).unwrap();
        }
        t0.elapsed().as_secs_f64() * 1e3
    };
    for _ in 0..2 {
        let ms: Vec<String> = [1, 2, 4, 8].iter().map(|&g| format!("groups of {g}: {:.0} ms", time(&mut d, g))).collect();
        eprintln!("[{tag}] prefill 8 prompts ({total} tokens): {}", ms.join(", "));
    }
    for rows in [1, 8, 32] {
        // Only the measured rows hold a sequence: a step computes rows up to the highest in use.
        for s in 0..32 {
            d.release(s);
            if s < rows {
                d.prefill(s, &prompts[s % 8]).unwrap();
            }
        }
        let batch: Vec<(usize, u32)> = (0..rows).map(|s| (s, 42)).collect();
        let t0 = Instant::now();
        for _ in 0..10 {
            d.step(&batch).unwrap();
        }
        eprintln!("[{tag}] decode step, {rows} rows: {:.1} ms", t0.elapsed().as_secs_f64() * 1e2);
    }
}

#[test]
fn serving_harness() {
    let Some(dir) = std::env::var_os("TINYFORGE_BENCH_EXPORT").map(PathBuf::from) else {
        eprintln!("SKIPPED: set TINYFORGE_BENCH_EXPORT to an export folder");
        return;
    };
    common::init();
    // `TINYFORGE_BENCH_LOAD_ONLY` skips to the closed-loop clients.
    if std::env::var_os("TINYFORGE_BENCH_LOAD_ONLY").is_none() {
        // Twice each, alternating, so a shared machine's load changes hit both alike.
        for all_logits in [true, false, true, false] {
            prefill_and_step(&dir, all_logits);
        }
        if std::env::var_os("TINYFORGE_BENCH_STEPS_ONLY").is_some() {
            return;
        }
        single_stream(&dir);
    }
    let configs: Vec<(usize, usize, bool)> = std::env::var("TINYFORGE_BENCH_CONFIGS")
        .unwrap_or_else(|_| "8:1,8:512,32:512".into())
        .split(',')
        .map(|c| {
            let mut p = c.split(':');
            let (a, b) = (p.next().unwrap(), p.next().expect("slots:budget[:all]"));
            (a.parse().unwrap(), b.parse().unwrap(), p.next() == Some("all"))
        })
        .collect();
    let sessions: Vec<InferenceSession> = configs
        .iter()
        .map(|&(slots, budget, all_logits)| {
            let o = EngineOptions {
                threads: Some(THREADS),
                slots,
                context_len: Some(512),
                prefill_budget: budget,
                all_logits,
                ..Default::default()
            };
            InferenceSession::load(&dir, &o).unwrap()
        })
        .collect();
    for s in &sessions {
        closed_loop(s, 2, 1); // warm-up
    }
    let mut single = 0.0;
    for (clients, per_client) in [(1, 3), (8, 4), (32, 2)] {
        // Alternating configurations so load changes on a shared machine hit them alike.
        for (&(slots, budget, all_logits), s) in configs.iter().zip(&sessions) {
            let mut l = closed_loop(s, clients, per_client);
            let rate = l.tokens as f64 / l.secs;
            if clients == 1 && single == 0.0 {
                single = rate;
            }
            eprintln!(
                "{clients:>2} clients, slots {slots:>2}, budget {budget:>4}{}: {rate:7.1} tok/s ({:.2}x of 1 client), TTFT p50 {:6.1} p90 {:6.1} p99 {:6.1} ms ({} requests)",
                if all_logits { " (all logits)" } else { "" },
                rate / single,
                pct(&mut l.ttft_ms, 0.5),
                pct(&mut l.ttft_ms, 0.9),
                pct(&mut l.ttft_ms, 0.99),
                l.ttft_ms.len()
            );
        }
    }
}
