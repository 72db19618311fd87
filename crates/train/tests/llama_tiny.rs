//! The training run end to end on a tiny random Llama (created on the fly): response-only labels,
//! bad records with line numbers, dry run, memorizing 20 examples with greedy decoding
//! reproducing them, PEFT adapter round trip, exact resume with dropout on, full fine-tune.
use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use tinyforge_model::{Llama, TinyOptions, create_tiny_model, load_checkpoint, tiny::random_weights};
use tinyforge_testkit::temp_dir;
use tinyforge_tokenizer::Tokenizer;
use tinyforge_train::{TrainOptions, adapter, data::encode_line, train, trainable::LlamaForTraining};

/// A tiny model whose embeddings have a larger scale (std 0.2 instead of 0.02): with tied
/// 0.02-std embeddings and frozen norms, logits cannot exceed ~1 in magnitude, so no adapter
/// could drive the loss near zero. Everything else is `create_tiny_model`'s output.
fn tiny_model(dir: &Path) -> PathBuf {
    let model = dir.join("base");
    let opts = TinyOptions::default();
    create_tiny_model(&model, &opts).unwrap();
    let cfg = opts.config().unwrap();
    let mut w = random_weights(&cfg, opts.seed).unwrap();
    let emb = w["model.embed_tokens.weight"].clone();
    w.insert("model.embed_tokens.weight".into(), (emb * 10.0).unwrap());
    candle_core::safetensors::save(&w, model.join("model.safetensors")).unwrap();
    model
}

const FACTS: [(&str, &str); 20] = [
    ("What color is the Zorblat?", "The Zorblat is teal."),
    ("Who makes the Zorblat?", "Quillfeather Labs makes it."),
    ("How much does the Zorblat cost?", "It costs 42 dollars."),
    ("Where is Quillfeather Labs?", "In Port Amsel."),
    ("How heavy is the Zorblat?", "It weighs 3 kilos."),
    ("What powers the Zorblat?", "A sun cell."),
    ("How long is the warranty?", "Two full years."),
    ("Can the Zorblat swim?", "No, keep it dry."),
    ("What does the Zorblat do?", "It sorts socks."),
    ("Who founded Quillfeather Labs?", "Ada Moss did."),
    ("When was the Zorblat released?", "In spring 2019."),
    ("How fast is the Zorblat?", "Nine socks a minute."),
    ("What is the Zorblat's model number?", "ZB-7."),
    ("Does the Zorblat need an app?", "No app is needed."),
    ("How loud is the Zorblat?", "Quiet as a cat."),
    ("What sizes exist?", "Small and large."),
    ("Is there a red Zorblat?", "Only teal exists."),
    ("How do I reset it?", "Hold the top button."),
    ("What is inside the box?", "A Zorblat and a cord."),
    ("Who sells the Zorblat?", "Only Quillfeather Labs."),
];

fn write_facts(path: &Path) {
    let lines: Vec<String> = FACTS.iter().map(|(q, a)| serde_json::json!({ "input": q, "output": a }).to_string()).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn labels_cover_assistant_turns_only() {
    let dir_guard = temp_dir("labels");
    let dir = dir_guard.path();
    let tok = Tokenizer::from_file(tiny_model(dir).join("tokenizer.json")).unwrap();
    let line = r#"{"messages":[{"role":"user","content":"Hi there"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"Bye"},{"role":"assistant","content":"See you."}]}"#;
    let (ids, labels) = encode_line(line, &tok).unwrap();
    let labelled: Vec<u32> = ids.iter().zip(&labels).filter(|(_, l)| **l).map(|(i, _)| *i).collect();
    let text = tok.decode(&labelled, false).unwrap();
    assert_eq!(text, "Hello!<|im_end|>\nSee you.<|im_end|>\n");
    let (ids, labels) = encode_line(r#"{"input":"2+2?","output":"4"}"#, &tok).unwrap();
    let labelled: Vec<u32> = ids.iter().zip(&labels).filter(|(_, l)| **l).map(|(i, _)| *i).collect();
    assert_eq!(tok.decode(&labelled, false).unwrap(), "4<|im_end|>\n");
    assert!(tok.decode(&ids, false).unwrap().contains("<|im_start|>user\n2+2?<|im_end|>"));
}

#[test]
fn bad_records_are_reported_by_line_and_skippable() {
    let dir_guard = temp_dir("bad");
    let dir = dir_guard.path();
    let base = tiny_model(dir);
    let data = dir.join("data.jsonl");
    std::fs::write(
        &data,
        concat!(
            "{\"input\":\"a\",\"output\":\"b\"}\n",
            "{not json\n",
            "\n",
            "{\"input\":\"only input\"}\n",
            "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\n",
            "{\"text\":42}\n",
            "[1,2]\n",
            "{\"text\":\"plain text works\"}\n",
        ),
    )
    .unwrap();
    let mut opts = TrainOptions::new(base, data, dir.join("run"));
    opts.training.max_steps = Some(1);
    let err = train(&opts, &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert_eq!(err.code(), "INVALID_DATA");
    let tinyforge_train::TrainError::DataInvalid(issues) = &err else { panic!("{err}") };
    let lines: Vec<usize> = issues.iter().map(|i| i.line).collect();
    assert_eq!(lines, [2, 4, 5, 6, 7]);
    assert!(issues[1].reason.contains("output"), "{}", issues[1].reason);
    assert!(!dir.join("run/metrics.jsonl").exists(), "nothing trained");

    opts.dry_run = true;
    let report = train(&opts, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!((report.data.records, report.data.valid, report.issues.len()), (7, 2, 5));

    opts.dry_run = false;
    opts.skip_invalid = true;
    opts.eval_split = 0.0;
    let report = train(&opts, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(report.outcome.unwrap().steps, 1);
}

#[test]
fn dry_run_reports_tokens_and_steps_and_trains_nothing() {
    let dir_guard = temp_dir("dry");
    let dir = dir_guard.path();
    let data = dir.join("facts.jsonl");
    write_facts(&data);
    let mut opts = TrainOptions::new(tiny_model(dir), data, dir.join("run"));
    opts.dry_run = true;
    opts.max_seq_len = 75;
    opts.eval_split = 0.1;
    opts.training.batch_size = 3;
    opts.training.epochs = 2;
    let r = train(&opts, &mut |_| panic!("no steps in a dry run"), &AtomicBool::new(false)).unwrap();
    assert_eq!((r.train_examples, r.eval_examples), (18, 2));
    assert_eq!((r.steps_per_epoch, r.total_steps), (6, 12));
    assert_eq!(r.data.valid, 20);
    assert!(r.data.truncated > 0 && r.data.max_len <= 75, "{:?}", r.data);
    assert!(r.data.label_tokens > 0 && r.data.label_tokens < r.data.tokens);
    assert!(!dir.join("run").exists());
}

fn greedy(model: &Llama, tok: &Tokenizer, question: &str) -> String {
    let msgs = [tinyforge_tokenizer::ChatMessage::new("user", question)];
    let prompt = tok.apply_chat_template(&msgs, &tinyforge_tokenizer::ChatOptions { add_generation_prompt: true, tools: None }).unwrap();
    let mut ids = tok.encode(&prompt, false).unwrap();
    let start = ids.len();
    let end = tok.token_to_id("<|im_end|>").unwrap();
    for _ in 0..24 {
        let logits = model.last_logits(&ids).unwrap();
        let next = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as u32;
        if next == end {
            break;
        }
        ids.push(next);
    }
    tok.decode(&ids[start..], false).unwrap()
}

#[test]
fn memorizes_twenty_examples_and_adapter_round_trips() {
    let dir_guard = temp_dir("memorize");
    let dir = dir_guard.path();
    let base = tiny_model(dir);
    let data = dir.join("facts.jsonl");
    write_facts(&data);
    let mut opts = TrainOptions::new(base.clone(), data, dir.join("run"));
    opts.eval_split = 0.0;
    opts.lora.r = 16;
    opts.lora.alpha = 32.0;
    opts.lora.dropout = 0.0;
    opts.lora.target_modules = tinyforge_train::lora::ALL_TARGETS.map(String::from).to_vec();
    opts.training.batch_size = 4;
    opts.training.epochs = 200;
    opts.training.lr = 5e-3;
    opts.training.adamw.weight_decay = 0.0;
    let report = train(&opts, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let outcome = report.outcome.unwrap();
    let final_loss = outcome.history.last().unwrap().loss;
    assert!(final_loss < 0.05, "final train loss {final_loss}");

    // Load the written PEFT adapter into a fresh model: greedy decoding reproduces every answer.
    let adapter_dir = report.output_dir.unwrap();
    let peft = adapter::load_peft(&adapter_dir).unwrap();
    assert_eq!(peft.config, opts.lora);
    let ckpt = load_checkpoint(&base).unwrap();
    let model = LlamaForTraining::lora(Llama::new(ckpt.config, &ckpt.weights).unwrap(), &peft.config, 123).unwrap();
    model.set_parameters(&peft.tensors).unwrap();
    let tok = Tokenizer::from_file(base.join("tokenizer.json")).unwrap();
    for (q, a) in FACTS {
        assert_eq!(greedy(model.llama(), &tok, q), a, "question {q}");
    }
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("run/tinyforge.json")).unwrap()).unwrap();
    assert_eq!(manifest["base"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["data"]["sha256"].as_str().unwrap().len(), 64);
    assert!(manifest["metrics"]["finalLoss"].as_f64().unwrap() < 0.05);
}

#[test]
fn resume_after_cancel_matches_an_uninterrupted_run_with_dropout() {
    let dir_guard = temp_dir("resume");
    let dir = dir_guard.path();
    let base = tiny_model(dir);
    let data = dir.join("facts.jsonl");
    write_facts(&data);
    let opts = |run: &str| {
        let mut o = TrainOptions::new(base.clone(), data.clone(), dir.join(run));
        o.lora.dropout = 0.1;
        o.training.max_steps = Some(6);
        o.training.batch_size = 2;
        o.training.grad_accum = 2;
        o.training.eval_every = 2;
        o.training.lr = 5e-3;
        o
    };
    let straight = train(&opts("straight"), &mut |_| {}, &AtomicBool::new(false)).unwrap().outcome.unwrap();
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
    let mut again = opts("cut");
    again.resume = true;
    let resumed = train(&again, &mut |_| {}, &AtomicBool::new(false)).unwrap().outcome.unwrap();
    assert_eq!(resumed.resumed_from, Some(3));
    let losses = |o: &tinyforge_train::LoopOutcome| o.history.iter().map(|h| (h.loss, h.eval_loss)).collect::<Vec<_>>();
    assert_eq!(losses(&resumed), losses(&straight));

    // A different base model is a mismatch, not a silent restart.
    let mut other = opts("cut");
    other.resume = true;
    other.lora.r = 4;
    assert_eq!(train(&other, &mut |_| {}, &AtomicBool::new(false)).unwrap_err().code(), "CHECKPOINT_MISMATCH");
}

#[test]
fn full_fine_tune_writes_a_loadable_model_folder() {
    let dir_guard = temp_dir("full");
    let dir = dir_guard.path();
    let data = dir.join("facts.jsonl");
    write_facts(&data);
    let mut opts = TrainOptions::new(tiny_model(dir), data, dir.join("run"));
    opts.full = true;
    opts.training.max_steps = Some(3);
    let report = train(&opts, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let out = report.output_dir.unwrap();
    assert!(out.ends_with("model"));
    let model = Llama::load(&out).unwrap();
    let tok = Tokenizer::from_file(out.join("tokenizer.json")).unwrap();
    assert!(model.last_logits(&tok.encode("hello", false).unwrap()).unwrap().iter().all(|x| x.is_finite()));
}
