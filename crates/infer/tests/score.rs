//! `Scorer` (teacher-forced NLL through ONNX Runtime) against the same sum computed from candle's
//! logits on a tiny random model: one window covering the sequence gives candle's figure to f32
//! rounding; sliding windows score every token exactly once.
//!
//! ONNX Runtime comes from `$TINYFORGE_ORT_LIB`, `$ORT_DYLIB_PATH` or the repo's node_modules;
//! with none of them the test prints why and passes without running.
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use tinyforge_infer::{KvShape, Scorer, init_runtime};
use tinyforge_model::{ForwardMode, Llama, TinyOptions, tiny::random_weights};
use tinyforge_onnx::{ExportOptions, Quantization, export_llama};

fn ort_library() -> Option<PathBuf> {
    for var in ["TINYFORGE_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1");
    p.canonicalize().ok()
}

fn candle_nll(model: &Llama, ids: &[u32], vocab: usize) -> f64 {
    let input = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let logits: Vec<f32> = model.forward(&input, ForwardMode::Eval).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let mut nll = 0.0;
    for t in 1..ids.len() {
        let row: Vec<f64> = logits[(t - 1) * vocab..t * vocab].iter().map(|&v| f64::from(v)).collect();
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        nll += lse - row[ids[t] as usize];
    }
    nll
}

#[test]
fn scorer_matches_candle_and_scores_each_token_once() {
    let Some(lib) = ort_library() else {
        eprintln!("SKIPPED: no ONNX Runtime library (set TINYFORGE_ORT_LIB or run `npm install`)");
        return;
    };
    init_runtime(&lib).expect("ONNX Runtime loads");
    let mut cfg = TinyOptions::default().config().unwrap();
    cfg.max_position_embeddings = 128;
    let w = random_weights(&cfg, 11).unwrap();
    let model = Llama::new(cfg.clone(), &w).unwrap();
    let tmp = tinyforge_testkit::temp_dir("score");
    let shape =
        KvShape { layers: cfg.num_hidden_layers, kv_heads: cfg.num_kv_heads(), head_dim: cfg.head_dim(), vocab_size: cfg.vocab_size };
    let ids: Vec<u32> = (0..40u32).map(|i| (i * 37 + 5) % cfg.vocab_size as u32).collect();
    let want = candle_nll(&model, &ids, cfg.vocab_size);

    let fp32 = tmp.path().join("model.onnx");
    export_llama(&cfg, &w, &fp32, &ExportOptions::default()).unwrap();
    let mut scorer = Scorer::load(&fp32, shape, Some(1)).unwrap();
    let whole = scorer.score_ids(&ids).unwrap();
    assert_eq!(whole.tokens, ids.len() - 1);
    assert!((whole.nll - want).abs() < 1e-4 * want.abs(), "ORT {} vs candle {want}", whole.nll);

    // Windows of 16 moved by 8: every token still scored once, each with ≥ 8 tokens of context,
    // so the sum differs from full context (the window limits it) but not by much on 40 tokens.
    scorer.window = 16;
    scorer.stride = 8;
    let windowed = scorer.score_ids(&ids).unwrap();
    assert_eq!(windowed.tokens, ids.len() - 1);
    assert!((windowed.nll - want).abs() < 0.2 * want.abs(), "windowed {} vs {want}", windowed.nll);
    // The first 16 tokens see the same context either way.
    let head = scorer.score_ids(&ids[..16]).unwrap();
    assert!((head.nll - candle_nll(&model, &ids[..16], cfg.vocab_size)).abs() < 1e-3);
    assert_eq!(scorer.score_ids(&ids[..1]).unwrap().tokens, 0);

    // A quantized export scores close to fp32 (int8 blocks on random weights).
    let int8 = tmp.path().join("model_quantized.onnx");
    export_llama(&cfg, &w, &int8, &ExportOptions { quantize: Some(Quantization::Int8), ..ExportOptions::default() }).unwrap();
    let q = Scorer::load(&int8, shape, Some(1)).unwrap().score_ids(&ids).unwrap();
    assert!((q.perplexity() / whole.perplexity() - 1.0).abs() < 0.05, "int8 ppl {} vs fp32 {}", q.perplexity(), whole.perplexity());
}
