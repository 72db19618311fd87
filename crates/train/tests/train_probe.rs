//! Manual probe (ignored): `train()` at the train bench's configuration (SmolLM2-135M GGUF, LoRA
//! r 8 / alpha 16 on q,k,v,o, batch 4 x 256 tokens, lr 1e-3, 2 threads), with the allocator
//! tunables the Node binding sets. Prints every step's loss with its f64 bits (to check that a
//! change keeps the loss sequence bit-exact), the steady tokens/s and tokens per CPU second of
//! the steps after the first two, and the process's peak RSS (`VmHWM`, as the bench reads it).
//! `RAYON_NUM_THREADS=2 cargo test --release --target x86_64-unknown-linux-gnu -p tinyforge-train --test train_probe -- --ignored --nocapture`
//! PROBE_STEPS (default 8), PROBE_PRECISION (fp32 | bf16 | auto, default fp32).
use std::{io::Write, sync::atomic::AtomicBool, time::Instant};

use tinyforge_model::bf16::Precision;
use tinyforge_train::{TrainOptions, train};

fn status_mb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

/// `count` chats of ten Q/A turns each from the sample file (every one longer than 256 tokens,
/// so each is cut to exactly 256 as in the bench), in a fixed order.
fn write_chats(src: &str, dst: &std::path::Path, count: usize) {
    let pairs: Vec<serde_json::Value> =
        std::fs::read_to_string(src).unwrap().lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut f = std::fs::File::create(dst).unwrap();
    for r in 0..count {
        let messages: Vec<serde_json::Value> = (0..10)
            .flat_map(|t| {
                let p = &pairs[(r * 7 + t * 3) % pairs.len()];
                [
                    serde_json::json!({"role": "user", "content": p["input"]}),
                    serde_json::json!({"role": "assistant", "content": p["output"]}),
                ]
            })
            .collect();
        writeln!(f, "{}", serde_json::json!({ "messages": messages })).unwrap();
    }
}

#[test]
#[ignore = "manual probe: needs the SmolLM2 GGUF, prints losses, speed and peak RSS"]
fn bench_config_run() {
    let Some(gguf) = tinyforge_testkit::smollm2_gguf() else { return };
    let steps: usize = std::env::var("PROBE_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let precision = match std::env::var("PROBE_PRECISION").as_deref() {
        Ok("bf16") => Precision::Bf16,
        Ok("auto") => Precision::Auto,
        _ => Precision::Fp32,
    };
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only changes glibc allocator tunables (as crates/node/src/lib.rs does).
    unsafe {
        mallopt(-3, 32 << 20);
        mallopt(-1, 1 << 30);
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let dir = tinyforge_testkit::temp_dir("train-probe");
    let (data, eval) = (dir.path().join("train.jsonl"), dir.path().join("eval.jsonl"));
    write_chats(&format!("{root}/sample_qna.jsonl"), &data, steps * 4);
    write_chats(&format!("{root}/sample_qna.eval.jsonl"), &eval, 8);
    let mut o = TrainOptions::new(gguf, data, dir.path().join("run"));
    o.eval_data = Some(eval);
    o.precision = precision;
    o.max_seq_len = 256;
    o.lora.dropout = 0.0;
    o.training.max_steps = Some(steps);
    o.training.lr = 1e-3;
    o.training.batch_size = 4;
    o.training.seed = 42;
    let started = Instant::now();
    let mut marks: Vec<(f64, f64)> = Vec::new();
    let mut on_progress = |p: &tinyforge_train::Progress| {
        marks.push((p.elapsed_seconds, cpu_seconds()));
        eprintln!(
            "step {:>3}: loss {:.6} bits {:016x}, rss {} MB, peak {} MB",
            p.step,
            p.loss,
            p.loss.to_bits(),
            status_mb("VmRSS:"),
            status_mb("VmHWM:")
        );
    };
    let report = train(&o, &mut on_progress, &AtomicBool::new(false)).unwrap();
    let outcome = report.outcome.unwrap();
    if marks.len() > 3 {
        // Steps 3..=n-1: the first two warm up, the last one evaluates.
        let (a, b) = (marks[1], marks[marks.len() - 2]);
        let tokens = ((marks.len() - 3) * 4 * 256) as f64;
        eprintln!("steady: {:.1} tok/s, {:.1} tok per CPU s", tokens / (b.0 - a.0), tokens / (b.1 - a.1));
    }
    eprintln!(
        "eval loss {:?}; wall {:.1} s; peak RSS (VmHWM) {} MB",
        outcome.final_eval.map(|e| e.loss),
        started.elapsed().as_secs_f64(),
        status_mb("VmHWM:")
    );
}
