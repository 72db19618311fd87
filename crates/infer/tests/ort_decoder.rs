//! `OrtDecoder` (the exported graph on ONNX Runtime) against candle's `LlamaDecoder` on the same
//! tiny random model: greedy tokens through the `Decoder` interface must be identical (fp32),
//! with the shared in-place KV buffers and with the chained present → past feeding, for chunked
//! prefill and interleaved slots; the INT8 export must stay close to fp32.
mod common;

use std::path::Path;

use tinyforge_generate::{Decoder, argmax};
use tinyforge_infer::{DecoderOptions, KvMode, KvShape, OrtDecoder};
use tinyforge_model::{Llama, LlamaConfig, LlamaDecoder, TinyOptions, Weights, tiny::random_weights};
use tinyforge_onnx::{ExportOptions, Quantization, export_llama};

fn tiny(seed: u64) -> (LlamaConfig, Weights, Llama) {
    let mut cfg = TinyOptions::default().config().unwrap();
    cfg.max_position_embeddings = 128;
    let weights = random_weights(&cfg, seed).unwrap();
    let model = Llama::new(cfg.clone(), &weights).unwrap();
    (cfg, weights, model)
}

fn shape(cfg: &LlamaConfig) -> KvShape {
    KvShape { layers: cfg.num_hidden_layers, kv_heads: cfg.num_kv_heads(), head_dim: cfg.head_dim(), vocab_size: cfg.vocab_size }
}

fn ort(path: &Path, cfg: &LlamaConfig, slots: usize, kv: KvMode) -> OrtDecoder {
    let opts = DecoderOptions { slots, context_len: cfg.max_position_embeddings, threads: Some(1), kv, ..Default::default() };
    OrtDecoder::load(path, shape(cfg), &opts).unwrap()
}

/// Greedy ids after `prompt` (prefilled in chunks of `chunk`), on `slot`.
fn greedy<D: Decoder>(d: &mut D, slot: usize, prompt: &[u32], chunk: usize, n: usize) -> Vec<u32>
where
    D::Error: std::fmt::Debug,
{
    d.release(slot);
    let mut logits = Vec::new();
    for c in prompt.chunks(chunk) {
        logits = d.prefill(slot, c).unwrap();
    }
    let mut out = Vec::new();
    for _ in 0..n {
        let t = argmax(&logits) as u32;
        out.push(t);
        logits = d.step(&[(slot, t)]).unwrap();
    }
    out
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn greedy_matches_candle_shared_and_chained() {
    common::init();
    let (cfg, w, model) = tiny(7);
    let tmp = common::temp_dir("ortdec");
    let path = tmp.path().join("model.onnx");
    export_llama(&cfg, &w, &path, &ExportOptions::default()).unwrap();
    let prompt: Vec<u32> = (0..23).map(|i| (i * 37 + 11) % 500).collect();
    let mut candle = LlamaDecoder::new(&model, 1);
    let want = greedy(&mut candle, 0, &prompt, prompt.len(), 40);
    for kv in [KvMode::Auto, KvMode::Chained] {
        let mut d = ort(&path, &cfg, 2, kv);
        assert_eq!(greedy(&mut d, 0, &prompt, prompt.len(), 40), want, "{kv:?} ({:?})", d.kv_mode());
        // Chunked prefill on another slot, then the first slot reused after release.
        assert_eq!(greedy(&mut d, 1, &prompt, 5, 40), want, "{kv:?} chunked");
        assert_eq!(greedy(&mut d, 0, &prompt, 7, 40), want, "{kv:?} reused slot");
    }
    // The export writes GroupQueryAttention, so Auto must pick the in-place buffers.
    assert_eq!(ort(&path, &cfg, 1, KvMode::Auto).kv_mode(), KvMode::Shared);
}

#[test]
fn interleaved_slots_match_candle_logits() {
    common::init();
    let (cfg, w, model) = tiny(3);
    let tmp = common::temp_dir("ortdec-slots");
    let path = tmp.path().join("model.onnx");
    export_llama(&cfg, &w, &path, &ExportOptions::default()).unwrap();
    let mut c = LlamaDecoder::new(&model, 3);
    let mut o = ort(&path, &cfg, 3, KvMode::Auto);
    let prompts: [Vec<u32>; 3] = [vec![5, 6, 7], (10..40).collect(), vec![99]];
    for (s, p) in prompts.iter().enumerate() {
        let (a, b) = (c.prefill(s, p).unwrap(), o.prefill(s, p).unwrap());
        assert!(max_diff(&a, &b) < 1e-3, "prefill slot {s}: {}", max_diff(&a, &b));
    }
    for t in 0..10_u32 {
        let batch = [(2, 100 + t), (0, 200 + t), (1, 300 + t)];
        let (a, b) = (c.step(&batch).unwrap(), o.step(&batch).unwrap());
        assert_eq!(b.len(), 3 * cfg.vocab_size);
        assert!(max_diff(&a, &b) < 1e-3, "step {t}: {}", max_diff(&a, &b));
    }
    // Steps over a subset: the slots left out get a dummy row in the shared forward, which must
    // leave what they hold untouched (their next real token overwrites the dummy's position).
    for t in 0..6_u32 {
        let batch: &[(usize, u32)] = if t % 2 == 0 { &[(1, 400 + t)] } else { &[(2, 410 + t), (0, 420 + t)] };
        let (a, b) = (c.step(batch).unwrap(), o.step(batch).unwrap());
        assert!(max_diff(&a, &b) < 1e-3, "subset step {t}: {}", max_diff(&a, &b));
    }
    assert!(o.step(&[(0, 1), (0, 2)]).is_err(), "a slot listed twice is rejected");
    o.release(1);
    assert!(o.step(&[(1, 3)]).is_err(), "a released slot must be prefilled again");
    let err = o.prefill(0, &vec![1; 200]).unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT");
}

#[test]
fn int8_export_stays_close_to_fp32() {
    common::init();
    let (cfg, w, _) = tiny(11);
    let tmp = common::temp_dir("ortdec-int8");
    let (p32, p8) = (tmp.path().join("model.onnx"), tmp.path().join("model_quantized.onnx"));
    export_llama(&cfg, &w, &p32, &ExportOptions::default()).unwrap();
    export_llama(&cfg, &w, &p8, &ExportOptions { quantize: Some(Quantization::Int8), ..ExportOptions::default() }).unwrap();
    let prompt: Vec<u32> = (0..16).map(|i| (i * 13 + 1) % 500).collect();
    let (mut a, mut b) = (ort(&p32, &cfg, 1, KvMode::Auto), ort(&p8, &cfg, 1, KvMode::Auto));
    let (la, lb) = (a.prefill(0, &prompt).unwrap(), b.prefill(0, &prompt).unwrap());
    let dot: f32 = la.iter().zip(&lb).map(|(x, y)| x * y).sum();
    let cos = dot / (la.iter().map(|x| x * x).sum::<f32>().sqrt() * lb.iter().map(|x| x * x).sum::<f32>().sqrt());
    assert!(cos > 0.99, "int8 vs fp32 logits cosine {cos}");
    // Decoding runs and stays finite.
    let toks = greedy(&mut b, 0, &prompt, 4, 20);
    assert_eq!(toks.len(), 20);
    assert!(toks.iter().all(|&t| (t as usize) < cfg.vocab_size));
}

#[test]
fn batched_first_prefill_matches_candle() {
    common::init();
    let (cfg, w, model) = tiny(5);
    let tmp = common::temp_dir("ortdec-batch-prefill");
    let path = tmp.path().join("model.onnx");
    export_llama(&cfg, &w, &path, &ExportOptions::default()).unwrap();
    let mut c = LlamaDecoder::new(&model, 4);
    let mut o = ort(&path, &cfg, 4, KvMode::Auto);
    // Slot 1 holds a sequence already: a batched first prefill must leave it alone.
    let held: Vec<u32> = (50..61).collect();
    let (a, b) = (c.prefill(1, &held).unwrap(), o.prefill(1, &held).unwrap());
    assert!(max_diff(&a, &b) < 1e-3);
    // Different lengths in one forward (right padded to 17), on scattered slots 3, 0 and 2.
    let prompts: [(usize, Vec<u32>); 3] = [(3, (100..117).collect()), (0, vec![7]), (2, (200..209).collect())];
    let rows: Vec<(usize, &[u32])> = prompts.iter().map(|(s, p)| (*s, p.as_slice())).collect();
    let got = o.prefill_rows(&rows).unwrap();
    assert_eq!(got.len(), 3 * cfg.vocab_size);
    for (r, (s, p)) in prompts.iter().enumerate() {
        let want = c.prefill(*s, p).unwrap();
        let d = max_diff(&want, &got[r * cfg.vocab_size..(r + 1) * cfg.vocab_size]);
        assert!(d < 1e-3, "batched prefill row {r} (slot {s}): {d}");
        assert_eq!(o.slot_len(*s), Some(p.len()));
    }
    // The copied keys carry on: decode all four slots together, then a continuation chunk.
    for t in 0..8_u32 {
        let batch = [(0, 300 + t), (1, 310 + t), (2, 320 + t), (3, 330 + t)];
        let (a, b) = (c.step(&batch).unwrap(), o.step(&batch).unwrap());
        assert!(max_diff(&a, &b) < 1e-3, "step {t} after batched prefill: {}", max_diff(&a, &b));
    }
    let more: Vec<u32> = (400..406).collect();
    let (a, b) = (c.prefill(0, &more).unwrap(), o.prefill_rows(&[(0, more.as_slice())]).unwrap());
    assert!(max_diff(&a, &b) < 1e-3, "continuation chunk: {}", max_diff(&a, &b));
    assert!(o.prefill_rows(&[(0, &[1][..]), (0, &[2][..])]).is_err(), "a slot listed twice is rejected");
    assert!(o.prefill_rows(&[(9, &[1][..])]).is_err(), "a slot out of range is rejected");
}

#[test]
fn served_graph_computes_only_the_rows_read_with_the_same_logits() {
    common::init();
    let (cfg, w, _) = tiny(11);
    let tmp = common::temp_dir("ortdec-rows");
    let path = tmp.path().join("model.onnx");
    export_llama(&cfg, &w, &path, &ExportOptions::default()).unwrap();
    let load = |all_logits| {
        let opts =
            DecoderOptions { slots: 4, context_len: cfg.max_position_embeddings, threads: Some(1), all_logits, ..Default::default() };
        OrtDecoder::load(&path, shape(&cfg), &opts).unwrap()
    };
    let (mut rows, mut all) = (load(false), load(true));
    assert!(rows.logits_rows_only(), "the export's graph is rewritten to take logits_rows");
    assert!(!all.logits_rows_only());
    let prompts: Vec<Vec<u32>> = [9, 14, 5].iter().map(|&n| (0..n).map(|i| (i * 31 + n * 7) % 500).collect()).collect();
    let first: Vec<(usize, &[u32])> = prompts.iter().enumerate().map(|(s, p)| (s, p.as_slice())).collect();
    // A batched first prefill (rows right padded), a chunk on one slot, a step over a gap.
    let (a, b) = (rows.prefill_rows(&first).unwrap(), all.prefill_rows(&first).unwrap());
    assert_eq!(a.len(), 3 * cfg.vocab_size);
    assert!(max_diff(&a, &b) < 1e-4, "batched prefill: {}", max_diff(&a, &b));
    let more = [(1_usize, &prompts[0][..4])];
    let (a, b) = (rows.prefill_rows(&more).unwrap(), all.prefill_rows(&more).unwrap());
    assert!(max_diff(&a, &b) < 1e-4, "chunk: {}", max_diff(&a, &b));
    let batch = [(2_usize, 17_u32), (0, 3)];
    let (a, b) = (rows.step(&batch).unwrap(), all.step(&batch).unwrap());
    assert_eq!(a.len(), 2 * cfg.vocab_size);
    assert!(max_diff(&a, &b) < 1e-4, "step: {}", max_diff(&a, &b));
    assert!(max_diff(&a[..cfg.vocab_size], &a[cfg.vocab_size..]) > 0.0, "rows differ: the step returns them in batch order");
}
