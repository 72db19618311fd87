//! Where an export folder's load time goes, on the folder `$TINYFORGE_BENCH_EXPORT` names
//! (skipped without it): config parsing, tokenizer.json, the ORT session build (`OrtDecoder::load`),
//! the whole `InferenceSession::load` (which overlaps the tokenizer with the session build), and
//! what the model-file read the GQA sniff used to do cost. Each part runs `$TINYFORGE_BENCH_ROUNDS`
//! (default 6) times, interleaved so load changes on a shared machine hit them alike; prints wall
//! and process CPU medians (CPU from /proc/self/stat, 10 ms ticks: the steadier figure on a busy
//! machine). Run with
//! `cargo test --release --target x86_64-unknown-linux-gnu -p tinyforge-infer --test bench_load -- --nocapture`.
mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use tinyforge_infer::{DecoderOptions, EngineOptions, ExportFolder, InferenceSession, OrtDecoder};

/// User + system CPU time of this process so far, in ms (all threads, also finished ones).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    // `rest` starts at field 3 (state, not numeric, so filtered out): utime is f[10], stime f[11].
    f.get(10).zip(f.get(11)).map_or(f64::NAN, |(u, s)| (u + s) * 10.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (c0, t0) = (cpu_ms(), Instant::now());
    let out = f();
    (out, t0.elapsed().as_secs_f64() * 1e3, cpu_ms() - c0)
}

fn old_sniff(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes.windows(19).any(|w| w == b"GroupQueryAttention")
}

#[test]
fn load_time_parts() {
    let Some(dir) = std::env::var_os("TINYFORGE_BENCH_EXPORT").map(PathBuf::from) else {
        eprintln!("SKIPPED: set TINYFORGE_BENCH_EXPORT to an export folder");
        return;
    };
    common::init();
    let rounds: usize = std::env::var("TINYFORGE_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let threads = Some(2);
    let folder = ExportFolder::open(&dir).unwrap();
    let dopts = DecoderOptions { slots: 1, context_len: folder.max_positions.min(4096), threads, ..Default::default() };
    let eopts = EngineOptions { slots: 1, threads, ..Default::default() };
    let names = [
        "config (ExportFolder::open)",
        "tokenizer.json",
        "ORT session (OrtDecoder::load)",
        "InferenceSession::load",
        "old sniff: read whole model",
    ];
    let mut wall = vec![Vec::new(); names.len()];
    let mut cpu = vec![Vec::new(); names.len()];
    let mut first = Vec::new();
    for round in 0..rounds {
        let mut parts = [(0.0, 0.0); 5];
        parts[0] = {
            let (_, w, c) = time(|| ExportFolder::open(&dir).unwrap());
            (w, c)
        };
        parts[1] = {
            let (_, w, c) = time(|| folder.tokenizer().unwrap());
            (w, c)
        };
        parts[2] = {
            let (_, w, c) = time(|| OrtDecoder::load(&folder.model_path, folder.shape, &dopts).unwrap());
            (w, c)
        };
        parts[3] = {
            let (s, w, c) = time(|| InferenceSession::load(&dir, &eopts).unwrap());
            s.close();
            (w, c)
        };
        parts[4] = {
            let (found, w, c) = time(|| old_sniff(&folder.model_path));
            assert!(found || folder.model_path.exists());
            (w, c)
        };
        if round == 0 {
            // The first session of a process also pays ORT's one-time setup.
            first = parts.to_vec();
            continue;
        }
        for (i, (w, c)) in parts.into_iter().enumerate() {
            wall[i].push(w);
            cpu[i].push(c);
        }
    }
    eprintln!(
        "{} ({} MB model), 2 intra-op threads, {} rounds after a first:",
        dir.display(),
        std::fs::metadata(&folder.model_path).map_or(0, |m| m.len() >> 20),
        rounds - 1
    );
    for (i, name) in names.iter().enumerate() {
        eprintln!(
            "  {name:32} wall median {:6.0} ms  cpu median {:6.0} ms   (first: wall {:.0} cpu {:.0})",
            median(&mut wall[i]),
            median(&mut cpu[i]),
            first[i].0,
            first[i].1
        );
    }
}
