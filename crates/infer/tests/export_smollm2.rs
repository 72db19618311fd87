//! Manual check of the ONNX export on the real SmolLM2-135M-Instruct (GGUF from
//! `$TINYFORGE_SMOLLM2_GGUF`): f32 export vs candle, INT8 vs f32, file sizes, and a few greedy
//! tokens decoded through the KV cache. Ignored by default (≈1 GB of exports, ~1 min):
//! `TINYFORGE_SMOLLM2_GGUF=... cargo test --release -p tinyforge-infer --test export_smollm2 -- --ignored --nocapture`
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use tinyforge_infer::{HostTensor, OnnxSession, SessionOptions, TensorData, init_runtime};
use tinyforge_model::{ForwardMode, Llama, LlamaConfig, load_checkpoint};
use tinyforge_onnx::{ExportOptions, Quantization, export_llama};
use tinyforge_tokenizer::Tokenizer;

fn ort_library() -> Option<PathBuf> {
    for var in ["TINYFORGE_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1")
        .canonicalize()
        .ok()
}

fn f32s(t: &HostTensor) -> Vec<f32> {
    match &t.data {
        TensorData::F32(v) => v.clone(),
        other => panic!("expected float32, got {}", other.elem_type()),
    }
}

/// One batch-1 run; returns logits `[seq, vocab]` and the `present.*` tensors.
fn step(
    s: &mut OnnxSession,
    cfg: &LlamaConfig,
    ids: &[u32],
    past_len: usize,
    past: Option<Vec<HostTensor>>,
) -> (Vec<f32>, Vec<HostTensor>) {
    let (n, total) = (ids.len() as i64, (past_len + ids.len()) as i64);
    let i64t = |dims: Vec<i64>, v: Vec<i64>| HostTensor { dims, data: TensorData::I64(v) };
    let mut feeds = vec![
        ("input_ids".to_string(), i64t(vec![1, n], ids.iter().map(|&x| i64::from(x)).collect())),
        ("attention_mask".to_string(), i64t(vec![1, total], vec![1; total as usize])),
        ("position_ids".to_string(), i64t(vec![1, n], (past_len as i64..total).collect())),
    ];
    let (kv, hd) = (cfg.num_kv_heads() as i64, cfg.head_dim() as i64);
    let mut past = past.map(Vec::into_iter);
    for i in 0..cfg.num_hidden_layers {
        for kind in ["key", "value"] {
            let empty = || HostTensor { dims: vec![1, kv, 0, hd], data: TensorData::F32(Vec::new()) };
            feeds.push((format!("past_key_values.{i}.{kind}"), past.as_mut().map_or_else(empty, |p| p.next().unwrap())));
        }
    }
    let mut out = s.run(feeds).unwrap();
    let logits = f32s(&out[0].1);
    (logits, out.drain(1..).map(|(_, t)| t).collect())
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, x)| if *x > v[best] { i } else { best })
}

/// (max |a - b|, positions with the same top-1, positions).
fn compare(a: &[f32], b: &[f32], vocab: usize) -> (f32, usize, usize) {
    let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let n = a.len() / vocab;
    let same = (0..n).filter(|&p| argmax(&a[p * vocab..(p + 1) * vocab]) == argmax(&b[p * vocab..(p + 1) * vocab])).count();
    (d, same, n)
}

#[test]
#[ignore = "needs TINYFORGE_SMOLLM2_GGUF and ~2 GB of RAM/disk; run with --ignored"]
fn smollm2_export_parity_and_sizes() {
    let Some(gguf) = tinyforge_testkit::smollm2_gguf() else { return };
    let Some(lib) = ort_library() else {
        eprintln!("SKIPPED: no ONNX Runtime library");
        return;
    };
    init_runtime(&lib).unwrap();
    let ckpt = load_checkpoint(&gguf).unwrap();
    let cfg = ckpt.config.clone();
    let model = Llama::new(cfg.clone(), &ckpt.weights).unwrap();
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    let prompt = "<|im_start|>user\nWhat is the capital of France? Answer in one sentence.<|im_end|>\n<|im_start|>assistant\n";
    let ids = tok.encode(prompt, false).unwrap();
    let v = cfg.vocab_size;

    let tmp = tinyforge_testkit::temp_dir("export-smollm2");
    let dir = tmp.path();
    let opts = SessionOptions { intra_threads: Some(2), ..Default::default() };
    let mut sessions = Vec::new();
    for (file, quantize) in [("model.onnx", None), ("model.int8.onnx", Some(Quantization::Int8))] {
        let t = std::time::Instant::now();
        let r = export_llama(
            &cfg,
            &ckpt.weights,
            &dir.join(file),
            &ExportOptions { quantize, calibration: quantize.map(|_| calibration(&tok)) },
        )
        .unwrap();
        eprintln!("{file}: {} bytes ({:.1} MB), exported in {:.1}s", r.bytes, r.bytes as f64 / 1e6, t.elapsed().as_secs_f64());
        sessions.push(OnnxSession::load(&dir.join(file), &opts).unwrap());
    }
    let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let want: Vec<f32> = model.forward(&input, ForwardMode::Eval).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let (f32_logits, _) = step(&mut sessions[0], &cfg, &ids, 0, None);
    let (q_logits, _) = step(&mut sessions[1], &cfg, &ids, 0, None);
    let spread = want.iter().fold(f32::MIN, |m, x| m.max(*x)) - want.iter().fold(f32::MAX, |m, x| m.min(*x));
    let (d, same, n) = compare(&f32_logits, &want, v);
    eprintln!("f32 ONNX vs candle over {n} prompt positions: max diff {d:.2e} (logit range {spread:.1}), top-1 same {same}/{n}");
    assert!(d < 1e-2 && same == n, "f32 export drifted from candle: {d}, {same}/{n}");
    let (dq, same_q, _) = compare(&q_logits, &f32_logits, v);
    eprintln!("INT8 vs f32 ONNX: max diff {dq:.3} ({:.1}% of range), top-1 same {same_q}/{n}", 100.0 * dq / spread);

    let per_pos: Vec<String> = (0..n)
        .map(|p| {
            let (a, b) = (&q_logits[p * v..(p + 1) * v], &f32_logits[p * v..(p + 1) * v]);
            let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            format!("{p}:{d:.2}{}", if argmax(a) == argmax(b) { "" } else { "*" })
        })
        .collect();
    eprintln!("INT8 vs f32 per position (max diff, * = top-1 differs): {}", per_pos.join(" "));
    // The same INT8 logits fed one token at a time (as in decoding: activations quantized per token).
    let mut past = None;
    let mut inc = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        let (l, present) = step(&mut sessions[1], &cfg, &[*id], k, past);
        past = Some(present);
        inc.extend(l);
    }
    let (di, same_i, _) = compare(&inc, &f32_logits, v);
    eprintln!("INT8 one token at a time vs f32: max diff {di:.3}, top-1 same {same_i}/{n}");
    // Greedy continuation through the cache with both exports.
    let mut greedy = Vec::new();
    for (name, s) in ["f32", "int8"].into_iter().zip(sessions.iter_mut()) {
        let t = std::time::Instant::now();
        let (logits, mut past) = step(s, &cfg, &ids, 0, None);
        let mut next = argmax(&logits[(ids.len() - 1) * v..]) as u32;
        let mut out = vec![next];
        for k in 0..15 {
            let (logits, present) = step(s, &cfg, &[next], ids.len() + k, Some(past));
            past = present;
            next = argmax(&logits) as u32;
            out.push(next);
        }
        eprintln!("{name} greedy (16 tokens, {:.2}s incl. prefill): {:?}", t.elapsed().as_secs_f64(), tok.decode(&out, false).unwrap());
        greedy.push(out);
    }
    // Measured: the 16 greedy tokens are identical ("The capital of France is Paris.<|im_end|>...").
    assert_eq!(greedy[0][..8], greedy[1][..8], "INT8 greedy continuation differs from f32");
}

/// The int8 export's calibration text in SmolLM2's tokens, as the `exportOnnx` binding passes it.
fn calibration(tok: &Tokenizer) -> tinyforge_onnx::CalibrationText {
    let ids = tok.encode(tinyforge_onnx::CALIBRATION_TEXT, false).unwrap();
    tinyforge_onnx::CalibrationText { name: tinyforge_onnx::CALIBRATION_TEXT_NAME.into(), ids }
}
