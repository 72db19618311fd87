//! Manual probe (ignored): where one SmolLM2 training step spends its time.
//! `cargo test --release -p tinyforge-train --test perf_probe -- --ignored --nocapture`
use std::time::Instant;

/// User + system CPU seconds of this process (all threads): comparable across runs even when
/// other processes compete for the cores, unlike wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

use tinyforge_model::{ForwardMode, Llama};
use tinyforge_train::{
    LoraConfig,
    batches::make_batch,
    data::Example,
    trainable::{LlamaForTraining, TrainableLm},
};

#[test]
#[ignore = "manual probe: needs the SmolLM2 GGUF, prints timings"]
fn step_breakdown() {
    let Some(path) = tinyforge_testkit::smollm2_gguf() else { return };
    let llama = Llama::load(&path).unwrap();
    let model = LlamaForTraining::lora(llama, &LoraConfig { dropout: 0.0, ..LoraConfig::default() }, 1).unwrap();
    // PROBE_SEQ: tokens per sequence (the train bench uses 256); half of each is labelled.
    let seq: usize = std::env::var("PROBE_SEQ").ok().and_then(|s| s.parse().ok()).unwrap_or(128);
    let exs: Vec<Example> = (0..4)
        .map(|i| Example {
            ids: (0..seq).map(|j| ((j * 31 + i * 7) % 4000 + 10) as u32).collect(),
            labels: (0..seq).map(|j| j > seq / 2).collect(),
            line: 1,
        })
        .collect();
    let refs: Vec<&Example> = exs.iter().collect();
    let batch = make_batch(&refs, 0).unwrap();
    // PROBE_INSTALL=1: run the step on a rayon worker (the GEMMs' pool) instead of a foreign thread.
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
    let install = std::env::var("PROBE_INSTALL").is_ok();
    let step = || {
        let t = Instant::now();
        let h = model.llama().forward_hidden(&batch.input_ids, ForwardMode::Eval).unwrap();
        let _ = h.sum_all().unwrap().to_scalar::<f32>().unwrap();
        let eval = t.elapsed();
        let (t, cpu) = (Instant::now(), cpu_seconds());
        let loss = model.loss_sum(&batch, true).unwrap();
        let _ = loss.to_scalar::<f32>().unwrap();
        let fwd = t.elapsed();
        let t = Instant::now();
        let g = loss.backward().unwrap();
        let bwd = t.elapsed();
        drop(g);
        let cpu = cpu_seconds() - cpu;
        eprintln!(
            "{} tokens: eval fwd {eval:?}, train fwd {fwd:?}, backward {bwd:?} → {:.0} tok/s; train step {cpu:.2} CPU s ({:.0} tok per CPU s)",
            4 * seq,
            (4 * seq) as f64 / (fwd + bwd).as_secs_f64(),
            (4 * seq) as f64 / cpu
        );
    };
    for _ in 0..3 {
        if install { pool.install(step) } else { step() }
    }
}

/// GEMM throughput for the shapes of a SmolLM2 LoRA step, in GFLOP per CPU second.
#[test]
#[ignore = "manual probe: prints GEMM throughput"]
fn gemm_shapes() {
    use candle_core::{Device, Tensor};
    for (m, k, n) in [(512, 576, 576), (512, 576, 1536), (512, 1536, 576), (512, 576, 192)] {
        let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let _ = x.matmul(&w.t().unwrap()).unwrap();
        let reps = 20;
        let (t, cpu) = (Instant::now(), cpu_seconds());
        for _ in 0..reps {
            let _ = x.matmul(&w.t().unwrap()).unwrap();
        }
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let gflop = 2.0 * (m * k * n * reps) as f64 / 1e9;
        eprintln!("x·wᵀ {m}x{k}x{n}: {:.1} GFLOP/s wall, {:.1} GFLOP per CPU s", gflop / wall, gflop / cpu);
    }
}

/// Single-thread GEMM throughput of `x·wᵀ` through `kernels::gemm_view` in both orientations
/// (`y = x·wᵀ` and `yᵀ = w·xᵀ`), and split over the pool, in GFLOP per CPU second.
#[test]
#[ignore = "manual probe: prints GEMM throughput"]
fn gemm_orientation() {
    use tinyforge_model::kernels::{View, gemm_view};
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for (m, k, n) in [(1024, 576, 576), (1024, 576, 1536), (1024, 1536, 576), (512, 576, 192)] {
        let x: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let mut y = vec![0f32; m * n];
        let reps = 10;
        let gflop = 2.0 * (m * k * n * reps) as f64 / 1e9;
        let mut time = |label: &str, f: &mut dyn FnMut(&mut [f32])| {
            f(&mut y);
            let (t, cpu) = (Instant::now(), cpu_seconds());
            for _ in 0..reps {
                f(&mut y);
            }
            let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
            eprintln!("{m}x{k}x{n} {label}: {:.1} GFLOP/s wall, {:.1} GFLOP per CPU s", gflop / wall, gflop / cpu);
        };
        time("x·wᵀ serial", &mut |y| gemm_view(y, n, m, n, k, View::rows(&x, k), View::rows(&w, k).t(), 1.0, false, false));
        time("w·xᵀ serial", &mut |y| gemm_view(y, m, n, m, k, View::rows(&w, k), View::rows(&x, k).t(), 1.0, false, false));
        time("x·wᵀ 2 threads", &mut |y| {
            pool.install(|| gemm_view(y, n, m, n, k, View::rows(&x, k), View::rows(&w, k).t(), 1.0, false, true));
        });
    }
}
