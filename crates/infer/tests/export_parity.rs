//! The exported Llama decoder (tinyforge-onnx `export_llama`) run by ONNX Runtime against
//! candle's `Llama::forward` (Eval mode) on tiny random models: full-sequence logits,
//! incremental decoding through `present.*` → `past_key_values.*`, left padding via
//! `attention_mask` (the plain-op graph; the default fused graph takes right padding only), and
//! the INT8 export against the f32 export.
//!
//! ONNX Runtime comes from `$TINYFORGE_ORT_LIB`, `$ORT_DYLIB_PATH` or the repo's node_modules;
//! with none of them the tests print why and pass without running.
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use tinyforge_infer::{HostTensor, OnnxSession, SessionOptions, TensorData, init_runtime};
use tinyforge_model::{ForwardMode, Llama, LlamaConfig, TinyOptions, Weights, tiny::random_weights};
use tinyforge_onnx::{CalibrationText, ExportOptions, HeadTail, Quantization, Scheme, export_llama, export_llama_scheme};

fn ort_library() -> Option<PathBuf> {
    for var in ["TINYFORGE_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1");
    p.canonicalize().ok()
}

/// Loads ONNX Runtime, or says why the test is skipped.
fn runtime() -> bool {
    let Some(lib) = ort_library() else {
        eprintln!("SKIPPED: no ONNX Runtime library (set TINYFORGE_ORT_LIB or run `npm install`)");
        return false;
    };
    init_runtime(&lib).expect("ONNX Runtime loads");
    true
}

fn temp_dir(tag: &str) -> tinyforge_testkit::TempDir {
    tinyforge_testkit::temp_dir(&format!("export-{tag}"))
}

/// The default tiny model (2 layers, 4 heads over 2 KV heads = GQA, hidden 64, vocab 512),
/// with a short RoPE table so the file sizes measure the weights.
fn tiny(tied: bool, seed: u64) -> (LlamaConfig, Weights, Llama) {
    let mut cfg = TinyOptions { tie_embeddings: tied, ..Default::default() }.config().unwrap();
    cfg.max_position_embeddings = 128;
    let weights = random_weights(&cfg, seed).unwrap();
    let model = Llama::new(cfg.clone(), &weights).unwrap();
    (cfg, weights, model)
}

fn export(cfg: &LlamaConfig, w: &Weights, dir: &Path, quantize: Option<Quantization>) -> OnnxSession {
    let path = dir.join(format!("model.{}.onnx", quantize.map_or("fp32", Quantization::name)));
    // int8 smooths with calibration ranges: any token stream exercises it on a random model.
    let ids = (0..300u32).map(|i| (i * 37 + 11) % cfg.vocab_size as u32).collect();
    let calibration = Some(CalibrationText { name: "test ids".into(), ids });
    let report = export_llama(cfg, w, &path, &ExportOptions { quantize, calibration }).unwrap();
    assert_eq!(report.quant.smoothing.is_some(), quantize == Some(Quantization::Int8));
    OnnxSession::load(&path, &SessionOptions { intra_threads: Some(1), ..Default::default() }).unwrap()
}

/// The f32 graph with plain-op attention (mask per position: any padding).
fn export_plain(cfg: &LlamaConfig, w: &Weights, dir: &Path) -> OnnxSession {
    let path = dir.join("model.plain.onnx");
    export_llama_scheme(cfg, w, &path, &Scheme { fused: false, ..Scheme::f32() }).unwrap();
    OnnxSession::load(&path, &SessionOptions { intra_threads: Some(1), ..Default::default() }).unwrap()
}

/// candle logits `[len, vocab]` of one unpadded sequence, flattened.
fn candle_logits(model: &Llama, ids: &[u32]) -> Vec<f32> {
    let input = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    model.forward(&input, ForwardMode::Eval).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn i64s(dims: &[usize], v: Vec<i64>) -> HostTensor {
    HostTensor { dims: dims.iter().map(|&d| d as i64).collect(), data: TensorData::I64(v) }
}

fn f32s(t: &HostTensor) -> &[f32] {
    match &t.data {
        TensorData::F32(v) => v,
        other => panic!("expected float32, got {}", other.elem_type()),
    }
}

/// One run: `ids`/`positions` `[batch, seq]`, `mask` `[batch, total]`, `past` = the previous
/// run's `present.*` in output order (or empty caches). Returns logits and the new `present.*`.
fn step(
    s: &mut OnnxSession,
    cfg: &LlamaConfig,
    ids: &[Vec<i64>],
    mask: &[Vec<i64>],
    positions: &[Vec<i64>],
    past: Option<Vec<HostTensor>>,
) -> (Vec<f32>, Vec<HostTensor>) {
    let (b, seq, total) = (ids.len(), ids[0].len(), mask[0].len());
    let mut feeds = vec![
        ("input_ids".to_string(), i64s(&[b, seq], ids.concat())),
        ("attention_mask".to_string(), i64s(&[b, total], mask.concat())),
        ("position_ids".to_string(), i64s(&[b, seq], positions.concat())),
    ];
    let (kv, hd) = (cfg.num_kv_heads() as i64, cfg.head_dim() as i64);
    let empty = || HostTensor { dims: vec![b as i64, kv, 0, hd], data: TensorData::F32(Vec::new()) };
    let mut past = past.map(Vec::into_iter);
    for i in 0..cfg.num_hidden_layers {
        for kind in ["key", "value"] {
            let t = past.as_mut().map_or_else(empty, |p| p.next().unwrap());
            feeds.push((format!("past_key_values.{i}.{kind}"), t));
        }
    }
    let mut out = s.run(feeds).unwrap();
    assert_eq!(out[0].0, "logits");
    assert_eq!(out[0].1.dims, vec![b as i64, seq as i64, cfg.vocab_size as i64]);
    assert_eq!(out[1].0, "present.0.key");
    assert_eq!(out[1].1.dims, vec![b as i64, kv, total as i64, hd]);
    let logits = f32s(&out[0].1).to_vec();
    (logits, out.drain(1..).map(|(_, t)| t).collect())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, x)| if *x > v[best] { i } else { best })
}

const PROMPT: [u32; 9] = [1, 72, 101, 300, 7, 511, 42, 260, 2];

fn row(v: &[u32]) -> Vec<i64> {
    v.iter().map(|&x| i64::from(x)).collect()
}

#[test]
fn full_sequence_logits_match_candle_tied_and_untied() {
    if !runtime() {
        return;
    }
    for tied in [true, false] {
        let (cfg, w, model) = tiny(tied, 7);
        let tmp = temp_dir(&format!("full-{tied}"));
        let dir = tmp.path();
        let n = PROMPT.len();
        let want = candle_logits(&model, &PROMPT);
        for (graph, mut s) in [("fused", export(&cfg, &w, dir, None)), ("plain", export_plain(&cfg, &w, dir))] {
            let (logits, _) = step(&mut s, &cfg, &[row(&PROMPT)], &[vec![1; n]], &[(0..n as i64).collect()], None);
            let d = max_diff(&logits, &want);
            let range = want.iter().fold(0f32, |m, x| m.max(x.abs()));
            eprintln!("tied={tied} {graph}: max |ORT - candle| = {d:.2e} (max |logit| {range:.3})");
            assert!(d < 1e-4, "tied={tied} {graph}: max diff {d}");
        }
    }
}

#[test]
fn incremental_decoding_through_the_cache_matches_the_full_sequence() {
    if !runtime() {
        return;
    }
    let (cfg, w, model) = tiny(true, 11);
    let tmp = temp_dir("incremental");
    let dir = tmp.path();
    let mut s = export(&cfg, &w, dir, None);
    let (n, v) = (PROMPT.len(), cfg.vocab_size);
    let want = candle_logits(&model, &PROMPT);
    let first = n - 3;
    let (logits, mut past) = step(&mut s, &cfg, &[row(&PROMPT[..first])], &[vec![1; first]], &[(0..first as i64).collect()], None);
    assert!(max_diff(&logits, &want[..first * v]) < 1e-4);
    for pos in first..n {
        let (logits, present) = step(&mut s, &cfg, &[row(&PROMPT[pos..=pos])], &[vec![1; pos + 1]], &[vec![pos as i64]], Some(past));
        let d = max_diff(&logits, &want[pos * v..(pos + 1) * v]);
        eprintln!("position {pos}: max |cached ORT - full candle| = {d:.2e}");
        assert!(d < 1e-4, "position {pos}: {d}");
        past = present;
    }
}

#[test]
fn left_padding_via_attention_mask_gives_the_unpadded_logits() {
    if !runtime() {
        return;
    }
    let (cfg, w, model) = tiny(true, 3);
    let tmp = temp_dir("padding");
    let dir = tmp.path();
    let mut s = export_plain(&cfg, &w, dir);
    let (n, v, pad) = (PROMPT.len(), cfg.vocab_size, 3);
    let short = &PROMPT[..n - pad];
    // Row 0: the full prompt. Row 1: a shorter prompt left-padded with id 0 to the same length,
    // positions counting real tokens only (as HF's `cumsum(mask) - 1`).
    let ids = [row(&PROMPT), [vec![0; pad], row(short)].concat()];
    let mask = [vec![1; n], [vec![0; pad], vec![1; n - pad]].concat()];
    let positions = [(0..n as i64).collect(), [vec![0; pad], (0..(n - pad) as i64).collect()].concat()];
    let (logits, past) = step(&mut s, &cfg, &ids, &mask, &positions, None);
    let d0 = max_diff(&logits[..n * v], &candle_logits(&model, &PROMPT));
    let d1 = max_diff(&logits[(n + pad) * v..], &candle_logits(&model, short));
    eprintln!("batch 2, left padding {pad}: row 0 diff {d0:.2e}, row 1 (real tokens) diff {d1:.2e}");
    assert!(d0 < 1e-4 && d1 < 1e-4, "{d0} {d1}");

    // One cached step for both rows: each continues its own sequence.
    let next = [7u32, 9u32];
    let ids = [vec![i64::from(next[0])], vec![i64::from(next[1])]];
    let mask = [vec![1; n + 1], [vec![0; pad], vec![1; n - pad + 1]].concat()];
    let positions = [vec![n as i64], vec![(n - pad) as i64]];
    let (logits, _) = step(&mut s, &cfg, &ids, &mask, &positions, Some(past));
    let full0 = [PROMPT.as_slice(), &next[..1]].concat();
    let full1 = [short, &next[1..]].concat();
    let want0 = candle_logits(&model, &full0);
    let want1 = candle_logits(&model, &full1);
    let d0 = max_diff(&logits[..v], &want0[n * v..]);
    let d1 = max_diff(&logits[v..], &want1[(n - pad) * v..]);
    eprintln!("batch 2 cached step: row 0 diff {d0:.2e}, row 1 diff {d1:.2e}");
    assert!(d0 < 1e-4 && d1 < 1e-4, "{d0} {d1}");
}

#[test]
fn int8_export_is_close_to_f32_and_about_a_quarter_of_its_size() {
    if !runtime() {
        return;
    }
    for tied in [true, false] {
        let (cfg, w, _) = tiny(tied, 5);
        let tmp = temp_dir(&format!("int8-{tied}"));
        let dir = tmp.path();
        let mut f = export(&cfg, &w, dir, None);
        let mut q = export(&cfg, &w, dir, Some(Quantization::Int8));
        // The weights are in `<file>_data` (ONNX external data): count both files.
        let file_len = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        let size = |name: &str| file_len(dir.join(name)) + file_len(dir.join(format!("{name}_data")));
        let (f_bytes, q_bytes) = (size("model.fp32.onnx"), size("model.int8.onnx"));
        let (n, v) = (PROMPT.len(), cfg.vocab_size);
        let run = |s: &mut OnnxSession| step(s, &cfg, &[row(&PROMPT)], &[vec![1; n]], &[(0..n as i64).collect()], None).0;
        let (lf, lq) = (run(&mut f), run(&mut q));
        let spread = lf.iter().fold(f32::MIN, |m, x| m.max(*x)) - lf.iter().fold(f32::MAX, |m, x| m.min(*x));
        let d = max_diff(&lf, &lq);
        let same_top1 = (0..n).filter(|&p| argmax(&lf[p * v..(p + 1) * v]) == argmax(&lq[p * v..(p + 1) * v])).count();
        eprintln!(
            "tied={tied}: f32 {f_bytes} B, int8 {q_bytes} B (ratio {:.3}); max |int8 - f32| = {d:.4} = {:.2}% of the logit range {spread:.3}; top-1 same at {same_top1}/{n} positions",
            q_bytes as f64 / f_bytes as f64,
            100.0 * d / spread
        );
        // Smoothed per-token int8 in layer 0, the last layer and the head in 8-bit blocks.
        assert!(d < 0.03 * spread, "tied={tied}: {d} vs range {spread}");
        assert_eq!(same_top1, n, "tied={tied}");
        // Per-token activation scales: a row's logits do not depend on what it is batched with.
        let other: Vec<u32> = PROMPT.iter().map(|t| (t * 7 + 3) % v as u32).collect();
        let (a, b) = (row(&PROMPT), row(&other));
        let full = || vec![1; n];
        let pos = || (0..n as i64).collect::<Vec<_>>();
        let batched = step(&mut q, &cfg, &[a.clone(), b.clone()], &[full(), full()], &[pos(), pos()], None).0;
        let alone_b = step(&mut q, &cfg, &[b], &[full()], &[pos()], None).0;
        let (db, da) = (max_diff(&batched[n * v..], &alone_b), max_diff(&batched[..n * v], &lq));
        eprintln!("tied={tied}: int8 batched vs alone: max diff {da:.2e} / {db:.2e}");
        assert!(da <= 1e-5 * spread && db <= 1e-5 * spread, "tied={tied}: batched rows differ from rows alone: {da} {db}");
        // One f32 scale + one zero point per 32 codes: 9.25 bits a weight, plus the f32 norms.
        assert!((q_bytes as f64) < 0.35 * f_bytes as f64, "tied={tied}: {q_bytes} vs {f_bytes}");
    }
}

#[test]
fn right_padding_in_the_fused_graph_gives_the_unpadded_logits() {
    if !runtime() {
        return;
    }
    let (cfg, w, model) = tiny(true, 13);
    let tmp = temp_dir("right-padding");
    let dir = tmp.path();
    let mut s = export(&cfg, &w, dir, None);
    let (n, v, pad) = (PROMPT.len(), cfg.vocab_size, 3);
    let short = &PROMPT[..n - pad];
    // Row 1 right padded: GroupQueryAttention takes each row's length from the mask.
    let ids = [row(&PROMPT), [row(short), vec![0; pad]].concat()];
    let mask = [vec![1; n], [vec![1; n - pad], vec![0; pad]].concat()];
    let positions = [(0..n as i64).collect(), (0..n as i64).collect()];
    let (logits, past) = step(&mut s, &cfg, &ids, &mask, &positions, None);
    let d0 = max_diff(&logits[..n * v], &candle_logits(&model, &PROMPT));
    let d1 = max_diff(&logits[n * v..(2 * n - pad) * v], &candle_logits(&model, short));
    eprintln!("fused, batch 2, right padding {pad}: row 0 diff {d0:.2e}, row 1 (real tokens) diff {d1:.2e}");
    assert!(d0 < 1e-4 && d1 < 1e-4, "{d0} {d1}");

    // One cached step: each row appends at its own length.
    let next = [7u32, 9u32];
    let ids = [vec![i64::from(next[0])], vec![i64::from(next[1])]];
    let mask = [vec![1; n + 1], [vec![1; n - pad + 1], vec![0; pad]].concat()];
    let positions = [vec![n as i64], vec![(n - pad) as i64]];
    let (logits, _) = step(&mut s, &cfg, &ids, &mask, &positions, Some(past));
    let want0 = candle_logits(&model, &[PROMPT.as_slice(), &next[..1]].concat());
    let want1 = candle_logits(&model, &[short, &next[1..]].concat());
    let d0 = max_diff(&logits[..v], &want0[n * v..]);
    let d1 = max_diff(&logits[v..], &want1[(n - pad) * v..]);
    eprintln!("fused, batch 2 cached step: row 0 diff {d0:.2e}, row 1 diff {d1:.2e}");
    assert!(d0 < 1e-4 && d1 < 1e-4, "{d0} {d1}");
}

#[test]
fn a_head_split_by_vocabulary_rows_gives_the_whole_heads_logits() {
    // Rows are quantized independently (blocks run along the hidden dim), so a split with the
    // same format on both sides must reproduce the unsplit head: this checks the plumbing (the
    // logits' concat order, the embedding's clamped ids and `Where`) on ids on both sides of it.
    if !runtime() {
        return;
    }
    for tied in [true, false] {
        let (cfg, w, _) = tiny(tied, 11);
        let tmp = temp_dir(&format!("split-{tied}"));
        let scheme = Quantization::Int8.scheme();
        let split = Scheme { head_tail: Some(HeadTail { from: (200, 512), format: scheme.head }), ..scheme };
        let load = |name: &str, scheme: &Scheme| {
            let path = tmp.path().join(name);
            export_llama_scheme(&cfg, &w, &path, scheme).unwrap();
            OnnxSession::load(&path, &SessionOptions { intra_threads: Some(1), ..Default::default() }).unwrap()
        };
        let (mut whole, mut parts) = (load("whole.onnx", &scheme), load("split.onnx", &split));
        let (ids, n) = (row(&PROMPT), PROMPT.len());
        assert!(PROMPT.iter().any(|&t| t < 200) && PROMPT.iter().any(|&t| t >= 200));
        let pos: Vec<i64> = (0..n as i64).collect();
        let (a, _) = step(&mut whole, &cfg, std::slice::from_ref(&ids), &[vec![1; n]], std::slice::from_ref(&pos), None);
        let (b, _) = step(&mut parts, &cfg, &[ids], &[vec![1; n]], &[pos], None);
        let d = max_diff(&a, &b);
        assert!(d <= 1e-5, "tied={tied}: split head differs from the whole head by {d}");
    }
}
