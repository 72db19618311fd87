//! Full fine-tuning trains every weight: the projections, the token embeddings, every RMSNorm
//! weight and the output head (a tied head being the embedding itself). Checked on tiny random
//! Llamas, tied and untied: which gradients exist and which are exactly zero, the tied gradient
//! equals the sum of the untied lookup and head gradients, analytic gradients match finite
//! differences, the written HF folder holds the trained tensors and reproduces the in-memory
//! model's logits, and a resumed run is bit-exact.
mod common;

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use candle_core::{Device, Tensor};
use tinyforge_model::{Llama, ModelFormat, TinyOptions, Weights, create_tiny_model, load_checkpoint};
use tinyforge_testkit::temp_dir;
use tinyforge_tokenizer::Tokenizer;
use tinyforge_train::{
    LoopConfig, TrainOptions,
    batches::make_batch,
    data::{Example, load_jsonl},
    run::write_full_model,
    train,
    trainable::{LlamaForTraining, TrainableLm},
    trainer::Trainer,
};

fn tiny_model(dir: &Path, tied: bool) -> PathBuf {
    let base = dir.join("base");
    create_tiny_model(&base, &TinyOptions { tie_embeddings: tied, ..TinyOptions::default() }).unwrap();
    base
}

const QA: [(&str, &str); 8] = [
    ("What color is the Zorblat?", "The Zorblat is teal."),
    ("Who makes the Zorblat?", "Quillfeather Labs makes it."),
    ("How much does it cost?", "It costs 42 dollars."),
    ("Where is the lab?", "In Port Amsel."),
    ("How heavy is it?", "It weighs 3 kilos."),
    ("What powers it?", "A sun cell."),
    ("How long is the warranty?", "Two full years."),
    ("Can it swim?", "No, keep it dry."),
];

fn write_data(dir: &Path) -> PathBuf {
    let path = dir.join("data.jsonl");
    let lines: Vec<String> = QA.iter().map(|(q, a)| serde_json::json!({ "input": q, "output": a }).to_string()).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// A few steps with a learning rate high enough that every trained tensor visibly moves, and no
/// weight decay, so a parameter with a zero gradient must come out bit-identical.
fn full_options(base: &Path, data: &Path, out: PathBuf) -> TrainOptions {
    let mut o = TrainOptions::new(base.to_path_buf(), data.to_path_buf(), out);
    o.full = true;
    o.eval_split = 0.0;
    o.training.max_steps = Some(4);
    o.training.batch_size = 2;
    o.training.lr = 1e-2;
    o.training.warmup_ratio = 0.0;
    o.training.adamw.weight_decay = 0.0;
    o
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2::<f32>().unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

/// Token ids that occur anywhere in `examples` (the only embedding rows a lookup can reach).
fn used_tokens(examples: &[Example]) -> HashSet<u32> {
    examples.iter().flat_map(|e| e.ids.iter().copied()).collect()
}

fn load_examples(base: &Path, data: &Path) -> (Tokenizer, Vec<Example>) {
    let tok = Tokenizer::from_file(base.join("tokenizer.json")).unwrap();
    let ds = load_jsonl(data, &tok, 256).unwrap();
    (tok, ds.examples)
}

#[test]
fn full_parameters_cover_every_checkpoint_tensor_and_lora_adds_none() {
    let dir_guard = temp_dir("names");
    let dir = dir_guard.path();
    for tied in [true, false] {
        let base = tiny_model(&dir.join(if tied { "tied" } else { "untied" }), tied);
        let ckpt = load_checkpoint(&base).unwrap();
        let model = LlamaForTraining::full(Llama::new(ckpt.config.clone(), &ckpt.weights).unwrap()).unwrap();
        let names: HashSet<&str> = model.parameters().iter().map(|(n, _)| n.as_str()).collect();
        let mut expected: HashSet<&str> = ckpt.weights.keys().map(String::as_str).collect();
        expected.remove("lm_head.weight"); // never stored by a tied checkpoint; present when untied
        if !tied {
            expected.insert("lm_head.weight");
        }
        assert_eq!(names, expected, "tied = {tied}");
        assert_eq!(names.len(), model.parameters().len(), "a tied head must not be a second parameter");

        let lora =
            LlamaForTraining::lora(Llama::new(ckpt.config.clone(), &ckpt.weights).unwrap(), &tinyforge_train::LoraConfig::default(), 1)
                .unwrap();
        assert!(lora.parameters().iter().all(|(n, _)| n.contains(".lora_A.") || n.contains(".lora_B.")));
    }
}

#[test]
fn gradients_reach_embeddings_norms_and_head_and_skip_unused_rows() {
    let dir_guard = temp_dir("grads");
    let dir = dir_guard.path();
    let base = tiny_model(dir, false);
    let (_, examples) = load_examples(&base, &write_data(dir));
    let batch_ex = [&examples[0], &examples[1]];
    // Pad with a token the batch already holds, so "unused" means absent from the batch.
    let batch = make_batch(&batch_ex, examples[0].ids[0]).unwrap();
    let used: HashSet<u32> = batch_ex.iter().flat_map(|e| e.ids.iter().copied()).collect();
    let ckpt = load_checkpoint(&base).unwrap();
    let model = LlamaForTraining::full(Llama::new(ckpt.config.clone(), &ckpt.weights).unwrap()).unwrap();
    let grads = model.loss_sum(&batch, true).unwrap().backward().unwrap();
    for (name, var) in model.parameters() {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm > 0.0 && norm.is_finite(), "{name}: squared gradient norm {norm}");
    }
    let embed = &model.parameters().iter().find(|(n, _)| n == "model.embed_tokens.weight").unwrap().1;
    let g = rows(grads.get(embed.as_tensor()).unwrap());
    let mut reached = 0;
    for (id, row) in g.iter().enumerate() {
        if used.contains(&(id as u32)) {
            reached += usize::from(row.iter().any(|&x| x != 0.0));
        } else {
            assert!(row.iter().all(|&x| x == 0.0), "token {id} is not in the batch but its embedding row has a gradient");
        }
    }
    assert!(reached > used.len() / 2, "only {reached} of {} used rows have a gradient", used.len());
}

/// A tied model's embedding gradient is the lookup's plus the head's: the same numbers as an
/// untied copy whose head starts equal to the embedding, summed.
#[test]
fn tied_gradient_is_lookup_plus_head() {
    let dir_guard = temp_dir("tied-grad");
    let dir = dir_guard.path();
    let base = tiny_model(dir, true);
    let (_, examples) = load_examples(&base, &write_data(dir));
    let batch = make_batch(&[&examples[2], &examples[3]], 0).unwrap();
    let ckpt = load_checkpoint(&base).unwrap();
    let tied = LlamaForTraining::full(Llama::new(ckpt.config.clone(), &ckpt.weights).unwrap()).unwrap();
    let mut cfg = ckpt.config.clone();
    cfg.tie_word_embeddings = false;
    let mut weights: Weights = ckpt.weights.clone();
    weights.insert("lm_head.weight".into(), weights["model.embed_tokens.weight"].copy().unwrap());
    let untied = LlamaForTraining::full(Llama::new(cfg, &weights).unwrap()).unwrap();

    let grad = |m: &LlamaForTraining, name: &str| -> Tensor {
        let grads = m.loss_sum(&batch, true).unwrap().backward().unwrap();
        let var = &m.parameters().iter().find(|(n, _)| n == name).unwrap().1;
        grads.get(var.as_tensor()).unwrap().clone()
    };
    let sum = (grad(&untied, "model.embed_tokens.weight") + grad(&untied, "lm_head.weight")).unwrap();
    let tied_grad = grad(&tied, "model.embed_tokens.weight");
    let scale = sum.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(scale > 0.0);
    assert!(max_abs_diff(&tied_grad, &sum) <= 1e-5 * scale.max(1.0), "tied gradient differs from lookup + head");
}

#[test]
fn untied_full_run_writes_trained_embeddings_norms_and_head() {
    let dir_guard = temp_dir("untied-run");
    let dir = dir_guard.path();
    let base = tiny_model(dir, false);
    let data = write_data(dir);
    let (_, examples) = load_examples(&base, &data);
    let report = train(&full_options(&base, &data, dir.join("run")), &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let out = report.output_dir.unwrap();
    let before = load_checkpoint(&base).unwrap();
    let after = load_checkpoint(&out).unwrap();
    assert_eq!(
        std::fs::read(out.join("config.json")).unwrap(),
        std::fs::read(base.join("config.json")).unwrap(),
        "config.json must be the base's"
    );
    assert_eq!(after.weights.keys().collect::<HashSet<_>>(), before.weights.keys().collect::<HashSet<_>>());
    for name in [
        "model.embed_tokens.weight",
        "lm_head.weight",
        "model.norm.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.1.post_attention_layernorm.weight",
        "model.layers.1.self_attn.q_proj.weight",
    ] {
        assert!(max_abs_diff(&before.weights[name], &after.weights[name]) > 1e-4, "{name} did not change");
    }
    // Without weight decay, rows of tokens the data never contains get a zero gradient and
    // zero Adam moments: they must come out bit-identical. The rows the data uses must move.
    let used = used_tokens(&examples);
    let (b, a) = (rows(&before.weights["model.embed_tokens.weight"]), rows(&after.weights["model.embed_tokens.weight"]));
    let mut moved = 0;
    for id in 0..b.len() {
        if used.contains(&(id as u32)) {
            moved += usize::from(b[id] != a[id]);
        } else {
            assert_eq!(b[id], a[id], "embedding row of unused token {id} changed");
        }
    }
    assert!(used.len() < b.len() && moved > used.len() / 2, "{moved} of {} used rows moved", used.len());
}

#[test]
fn tied_full_run_stays_tied() {
    let dir_guard = temp_dir("tied-run");
    let dir = dir_guard.path();
    let base = tiny_model(dir, true);
    let data = write_data(dir);
    let (_, examples) = load_examples(&base, &data);
    let out = train(&full_options(&base, &data, dir.join("run")), &mut |_| {}, &AtomicBool::new(false)).unwrap().output_dir.unwrap();
    let before = load_checkpoint(&base).unwrap();
    let after = load_checkpoint(&out).unwrap();
    assert!(after.config.tie_word_embeddings);
    assert_eq!(after.config, before.config);
    let stored = candle_core::safetensors::load(out.join("model.safetensors"), &Device::Cpu).unwrap();
    assert!(!stored.contains_key("lm_head.weight"), "a tied model must not gain a separate head");
    // Through the tied head every row gets a gradient, even for tokens the data never uses.
    let used = used_tokens(&examples);
    let (b, a) = (rows(&before.weights["model.embed_tokens.weight"]), rows(&after.weights["model.embed_tokens.weight"]));
    let unused_moved = (0..b.len()).filter(|&id| !used.contains(&(id as u32)) && b[id] != a[id]).count();
    assert!(unused_moved > (b.len() - used.len()) / 2, "only {unused_moved} unused rows moved: is the head tied to the trained embedding?");
    assert!(max_abs_diff(&before.weights["model.norm.weight"], &after.weights["model.norm.weight"]) > 1e-4);
}

#[test]
fn written_folder_reproduces_the_trained_model_logits() {
    for tied in [true, false] {
        let dir_guard = temp_dir(if tied { "logits-tied" } else { "logits-untied" });
        let dir = dir_guard.path();
        let base = tiny_model(dir, tied);
        let data = write_data(dir);
        let (tok, examples) = load_examples(&base, &data);
        let ckpt = load_checkpoint(&base).unwrap();
        let model = LlamaForTraining::full(Llama::new(ckpt.config.clone(), &ckpt.weights).unwrap()).unwrap();
        let cfg = LoopConfig { max_steps: Some(3), batch_size: 2, lr: 1e-2, ..LoopConfig::default() };
        let trainer = Trainer::new(&model, &examples, &[], &cfg, &dir.join("run"), BTreeMap::new()).unwrap();
        trainer.run(&mut |_| {}, &AtomicBool::new(false)).unwrap();
        let out = dir.join("model");
        write_full_model(&out, &base, ModelFormat::HfFolder, &tok, &ckpt.config, ckpt.weights, &model).unwrap();
        let loaded = Llama::load(&out).unwrap();
        let base_model = Llama::load(&base).unwrap();
        for prompt in ["What color is the Zorblat?", "hello world 42"] {
            let ids = tok.encode(prompt, false).unwrap();
            let trained = model.llama().last_logits(&ids).unwrap();
            assert_eq!(loaded.last_logits(&ids).unwrap(), trained, "tied = {tied}, prompt {prompt:?}");
            assert_ne!(base_model.last_logits(&ids).unwrap(), trained, "training changed nothing");
        }
    }
}

#[test]
fn full_resume_is_bit_exact() {
    let dir_guard = temp_dir("resume");
    let dir = dir_guard.path();
    let base = tiny_model(dir, false);
    let data = write_data(dir);
    let opts = |run: &str| {
        let mut o = full_options(&base, &data, dir.join(run));
        o.training.max_steps = Some(6);
        o.training.grad_accum = 2;
        o.training.adamw.weight_decay = 0.01;
        o.training.lr = 5e-3;
        o
    };
    let straight = train(&opts("straight"), &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let cancel = AtomicBool::new(false);
    let err = train(
        &opts("cut"),
        &mut |p| {
            if p.step == 3 {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &cancel,
    )
    .unwrap_err();
    assert_eq!(err.code(), "ABORTED");
    let ckpt = tinyforge_train::checkpoint::list(&dir.join("cut/checkpoints")).unwrap().pop().unwrap().1;
    let saved = candle_core::safetensors::load(ckpt.join("params.safetensors"), &Device::Cpu).unwrap();
    let moments = candle_core::safetensors::load(ckpt.join("optimizer.safetensors"), &Device::Cpu).unwrap();
    for name in ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight"] {
        assert!(saved.contains_key(name), "checkpoint lacks {name}");
        assert!(
            moments.contains_key(&format!("{name}::m")) && moments.contains_key(&format!("{name}::v")),
            "checkpoint lacks moments of {name}"
        );
    }
    let mut again = opts("cut");
    again.resume = true;
    let resumed = train(&again, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let losses = |r: &tinyforge_train::TrainReport| r.outcome.as_ref().unwrap().history.iter().map(|h| h.loss).collect::<Vec<_>>();
    assert_eq!(resumed.outcome.as_ref().unwrap().resumed_from, Some(3));
    assert_eq!(losses(&resumed), losses(&straight));
    let bytes = |r: &tinyforge_train::TrainReport| std::fs::read(r.output_dir.as_ref().unwrap().join("model.safetensors")).unwrap();
    assert!(bytes(&resumed) == bytes(&straight), "resumed model differs from the uninterrupted one");
}

/// Analytic gradients of the newly trainable weights (embedding rows the batch uses, RMSNorm
/// weights, the untied head) against central finite differences, through the Train-mode ops.
#[test]
fn full_gradients_match_finite_differences() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let opts = TinyOptions { hidden: 32, intermediate: 64, tie_embeddings: false, ..TinyOptions::default() };
    let cfg = opts.config().unwrap();
    let weights = tinyforge_model::tiny::random_weights(&cfg, 9).unwrap();
    let model = LlamaForTraining::full(Llama::new(cfg, &weights).unwrap()).unwrap();
    let ex = |ids: Vec<u32>| Example { labels: (0..ids.len()).map(|j| j >= 2).collect(), ids, line: 1 };
    let (a, b) = (ex(vec![5, 17, 300, 42, 9, 77]), ex(vec![8, 100, 3, 250]));
    let batch = make_batch(&[&a, &b], 0).unwrap();
    let loss = |m: &LlamaForTraining| f64::from(m.loss_sum(&batch, true).unwrap().to_scalar::<f32>().unwrap());
    let grads = model.loss_sum(&batch, true).unwrap().backward().unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    // Embedding rows have norm ~0.1 and go through RMSNorm: at eps 1e-2 the central difference
    // itself is off by ~4% (third-order terms); 3e-3 is well inside f32 loss precision.
    let eps = 3e-3f64;
    let mut checked = 0;
    for (name, var) in model.parameters() {
        let hidden = var.dim(var.rank() - 1).unwrap();
        // Embedding elements from rows the batch looks up (other rows' gradient is exactly 0).
        let pick = |rng: &mut StdRng| match name.as_str() {
            "model.embed_tokens.weight" => [5usize, 42, 100, 8][rng.random_range(0..4)] * hidden + rng.random_range(0..hidden),
            n if n.ends_with("norm.weight") || n == "lm_head.weight" => rng.random_range(0..var.elem_count()),
            _ => usize::MAX,
        };
        let analytic = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for _ in 0..3 {
            let i = pick(&mut rng);
            if i == usize::MAX {
                break;
            }
            common::assert_gradient_element(name, var, i, analytic[i], eps, || loss(&model));
            checked += 1;
        }
    }
    // embedding + lm_head + final norm + 2 norms in each of 2 layers, 3 elements each.
    assert_eq!(checked, 3 * (1 + 1 + 1 + 2 * 2));
}
