//! Manual probe (ignored): what holds a SmolLM2 LoRA step's peak RSS. One step of batch 4 x
//! PROBE_SEQ tokens (default 256; three quarters labelled) in two lanes, as `train()` runs it
//! (2-thread pool), with the resident size printed after each phase.
//! `CANDLE_NUM_THREADS=1 cargo test --release --target x86_64-unknown-linux-gnu -p tinyforge-train --test rss_probe -- --ignored --nocapture`
use rayon::prelude::*;
use tinyforge_model::Llama;
use tinyforge_train::{
    LoraConfig,
    data::Example,
    lanes::{LANES, in_lane, lane_batches},
    trainable::{LlamaForTraining, TrainableLm},
};

/// `VmRSS` and `VmHWM` of this process, in MB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn report(phase: &str) {
    let (now, peak) = rss();
    eprintln!("{phase:<28} rss {now:>5} MB, peak {peak:>5} MB");
}

#[test]
#[ignore = "manual probe: needs the SmolLM2 GGUF, prints resident sizes"]
fn step_resident_sizes() {
    let Some(path) = tinyforge_testkit::smollm2_gguf() else { return };
    let seq: usize = std::env::var("PROBE_SEQ").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    // The allocator as the Node binding sets it when training starts (crates/node/src/lib.rs).
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only changes glibc allocator tunables (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD).
    unsafe {
        mallopt(-3, 32 << 20);
        mallopt(-1, 1 << 30);
    }
    report("start");
    let llama = Llama::load(&path).unwrap();
    report("model loaded");
    let model = LlamaForTraining::lora(llama, &LoraConfig { dropout: 0.0, ..LoraConfig::default() }, 1).unwrap();
    report("lora attached");
    let exs: Vec<Example> = (0..4)
        .map(|i| Example {
            ids: (0..seq).map(|j| ((j * 31 + i * 7) % 4000 + 10) as u32).collect(),
            labels: (0..seq).map(|j| j > seq / 4).collect(),
            line: 1,
        })
        .collect();
    let refs: Vec<&Example> = exs.iter().collect();
    let lanes = lane_batches(&refs, 0).unwrap();
    eprintln!("{} lanes of {} rows", lanes.len(), refs.len() / lanes.len());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for step in 0..2 {
        // As the trainer runs them: `LANES` lanes side by side per round.
        let round = &lanes[..LANES.min(lanes.len())];
        let losses: Vec<_> = pool.install(|| {
            round
                .par_iter()
                .enumerate()
                .map(|(i, b)| in_lane(i, || tinyforge_model::kernels::sharing_pool(round.len(), || model.loss_sum(b, true).unwrap())))
                .collect()
        });
        report(&format!("step {step}: first round's forwards held"));
        let grads: Vec<_> = pool.install(|| losses.par_iter().map(|l| l.backward().unwrap()).collect());
        report(&format!("step {step}: backward done"));
        drop((grads, losses));
        report(&format!("step {step}: graphs dropped"));
    }
}
