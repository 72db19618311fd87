//! Manual probe (ignored): paired A/B of the training hot path's switches on SmolLM2, one LoRA
//! step (q,k,v,o, r 8, batch 4 x PROBE_SEQ tokens, default 256) run as `train()` runs it (two
//! lanes side by side on a 2-thread pool), A and B alternating so both see the same machine load.
//! Reports tokens per CPU second (robust to other load) and the B/A ratio.
//! `cargo test --release --target x86_64-unknown-linux-gnu -p tinyforge-train --test speed_ab -- --ignored --nocapture`
//! PROBE_AB=exp|mlp|both|head|head_stream|micro|zero_fill|residual picks what is compared (default both, one after the other).
use rayon::prelude::*;
use tinyforge_model::{Llama, fast_exp};
use tinyforge_train::{
    LoraConfig,
    batches::{Batch, make_batch},
    data::Example,
    lanes::{LANES, in_lane, lane_batches},
    trainable::{LlamaForTraining, TrainableLm},
};

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Runs `rounds` x (A step, B step) and prints tokens per CPU second of each.
fn paired(label: &str, rounds: usize, tokens: usize, mut step: impl FnMut(bool) -> f32) {
    let (mut cpu, mut wall) = ([0f64; 2], [0f64; 2]);
    let mut losses = [0f32; 2];
    for round in 0..=rounds {
        for (k, b) in [false, true].into_iter().enumerate() {
            let (t, c) = (std::time::Instant::now(), cpu_seconds());
            losses[k] = step(b);
            // Round 0 warms both up (allocator, page faults, packing caches) and is not counted.
            if round > 0 {
                cpu[k] += cpu_seconds() - c;
                wall[k] += t.elapsed().as_secs_f64();
            }
        }
    }
    let per_cpu = |k: usize| (rounds * tokens) as f64 / cpu[k];
    let per_wall = |k: usize| (rounds * tokens) as f64 / wall[k];
    eprintln!(
        "{label}: A {:.0} tok/CPU s ({:.0} tok/s wall), B {:.0} tok/CPU s ({:.0} tok/s wall): B/A {:.3} per CPU s; loss sums A {} B {}",
        per_cpu(0),
        per_wall(0),
        per_cpu(1),
        per_wall(1),
        per_cpu(1) / per_cpu(0),
        losses[0],
        losses[1]
    );
}

#[test]
#[ignore = "manual probe: needs the SmolLM2 GGUF, prints timings"]
fn fast_exp_and_fused_mlp() {
    let Some(path) = tinyforge_testkit::smollm2_gguf() else { return };
    let seq = env("PROBE_SEQ", 256);
    let rounds = env("PROBE_ROUNDS", 4);
    let which = std::env::var("PROBE_AB").unwrap_or_else(|_| "both".into());
    let model_with = |fused: bool, residual: bool| {
        let mut llama = Llama::load(&path).unwrap();
        llama.set_fused_mlp(fused);
        llama.set_fused_residual(residual);
        LlamaForTraining::lora(llama, &LoraConfig { dropout: 0.0, ..LoraConfig::default() }, 1).unwrap()
    };
    let model = |fused: bool| model_with(fused, true);
    let exs: Vec<Example> = (0..4)
        .map(|i| Example {
            ids: (0..seq).map(|j| ((j * 31 + i * 7) % 4000 + 10) as u32).collect(),
            labels: (0..seq).map(|j| j > seq / 4).collect(),
            line: 1,
        })
        .collect();
    let refs: Vec<&Example> = exs.iter().collect();
    let lanes = lane_batches(&refs, 0).unwrap();
    // PROBE_AB=micro's A: two lanes of two sequences (B: `lane_batches`' lanes, one sequence
    // each with TINYFORGE_LANE_TOKENS=256).
    let pairs: Vec<_> = refs.chunks(2).map(|c| make_batch(c, 0).unwrap()).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    // As the trainer runs them: `LANES` lanes side by side per round.
    let run = |m: &LlamaForTraining, lanes: &[Batch]| -> f32 {
        pool.install(|| {
            let mut total = 0f32;
            for (r, round) in lanes.chunks(LANES).enumerate() {
                let sums: Vec<f32> = round
                    .par_iter()
                    .enumerate()
                    .map(|(i, b)| {
                        in_lane(r * LANES + i, || {
                            tinyforge_model::kernels::sharing_pool(round.len(), || {
                                let loss = m.loss_sum(b, true).unwrap();
                                let _grads = loss.backward().unwrap();
                                loss.to_scalar::<f32>().unwrap()
                            })
                        })
                    })
                    .collect();
                total += sums.iter().sum::<f32>();
            }
            total
        })
    };
    let step = |m: &LlamaForTraining| run(m, &lanes);
    let tokens = 4 * seq;
    if which == "exp" || which == "both" {
        let m = model(true);
        paired("exp: A f32::exp (libm), B fast_exp", rounds, tokens, |b| {
            fast_exp::force(if b { None } else { Some(fast_exp::ExpKernel::Libm) });
            step(&m)
        });
        fast_exp::force(None);
    }
    if which == "head" {
        let m = model(true);
        let big: usize = env("PROBE_HEAD_ROWS", 96);
        paired(&format!("head chunk rows: A 48, B {big}"), rounds, tokens, |b| {
            tinyforge_train::head_loss::set_probe_chunk_rows(if b { big } else { 0 });
            step(&m)
        });
        tinyforge_train::head_loss::set_probe_chunk_rows(0);
    }
    if which == "micro" {
        let m = model(true);
        paired(
            &format!("lanes: A 2 x 2 sequences, B {} lanes (lane_tokens {})", lanes.len(), tinyforge_train::lanes::lane_tokens()),
            rounds,
            tokens,
            |b| {
                if b { step(&m) } else { run(&m, &pairs) }
            },
        );
    }
    if which == "zero_fill" {
        let m = model(true);
        paired("gemm outputs: A zero-filled, B written directly", rounds, tokens, |b| {
            tinyforge_model::kernels::set_probe_zero_fill(!b);
            step(&m)
        });
        tinyforge_model::kernels::set_probe_zero_fill(false);
    }
    if which == "head_stream" {
        let m = model(true);
        paired("head: A materialised logits, B streamed", rounds, tokens, |b| {
            tinyforge_train::head_loss::set_probe_materialise(!b);
            step(&m)
        });
        tinyforge_train::head_loss::set_probe_materialise(false);
    }
    if which == "residual" {
        let (separate, fused) = (model_with(true, false), model(true));
        paired("residual: A adds + norm + MLP ops, B one residual_mlp op", rounds, tokens, |b| step(if b { &fused } else { &separate }));
    }
    if which == "mlp" || which == "both" {
        let (unfused, fused) = (model(false), model(true));
        paired("mlp: A unfused, B fused frozen MLP", rounds, tokens, |b| step(if b { &fused } else { &unfused }));
    }
}
