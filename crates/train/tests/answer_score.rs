//! Eval loss of an answer given its prompt (`data::encode_answer` + `Llama::score`, what
//! `foremforge eval` reports) counts the tokens the trainer trains on and equals the trainer's own
//! eval loss on the same records: one masking, two callers. Tiny random model made on the fly.
use tinyforge_model::{Llama, TinyOptions, create_tiny_model, score::DEFAULT_CHUNK};
use tinyforge_testkit::temp_dir;
use tinyforge_tokenizer::{ChatMessage, Tokenizer};
use tinyforge_train::{
    data::{Example, encode_answer, encode_line},
    trainable::LlamaForTraining,
    trainer::evaluate,
};

const PAIRS: [(&str, &str); 4] = [
    ("What color is the Zorblat?", "The Zorblat is teal."),
    ("Who makes it?", "Quillfeather Labs makes it, in Port Amsel."),
    ("How much?", "42"),
    ("When was the Zorblat released, and by whom?", "In spring 2019, by Ada Moss."),
];

fn chat(q: &str, a: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new("user", q), ChatMessage::new("assistant", a)]
}

#[test]
fn answer_labels_are_the_last_assistant_turn_only() {
    let dir = temp_dir("answer-labels");
    create_tiny_model(dir.path(), &TinyOptions::default()).unwrap();
    let tok = Tokenizer::from_file(dir.path().join("tokenizer.json")).unwrap();
    let msgs = vec![
        ChatMessage::new("user", "Hi there"),
        ChatMessage::new("assistant", "Hello!"),
        ChatMessage::new("user", "Bye"),
        ChatMessage::new("assistant", "See you."),
    ];
    let (ids, labels) = encode_answer(&msgs, &tok).unwrap();
    let labelled: Vec<u32> = ids.iter().zip(&labels).filter(|(_, l)| **l).map(|(i, _)| *i).collect();
    assert_eq!(tok.decode(&labelled, false).unwrap(), "See you.<|im_end|>\n");
    // A pair: exactly the trainer's labels.
    let line = serde_json::json!({ "input": PAIRS[0].0, "output": PAIRS[0].1 }).to_string();
    assert_eq!(encode_answer(&chat(PAIRS[0].0, PAIRS[0].1), &tok).unwrap(), encode_line(&line, &tok).unwrap());
    let err = encode_answer(&msgs[..3], &tok).unwrap_err();
    assert!(err.contains("assistant"), "{err}");
    assert!(encode_answer(&[], &tok).is_err());
}

#[test]
fn scored_answers_equal_the_trainers_eval_loss() {
    let dir = temp_dir("answer-score");
    create_tiny_model(dir.path(), &TinyOptions::default()).unwrap();
    let tok = Tokenizer::from_file(dir.path().join("tokenizer.json")).unwrap();
    let model = Llama::load(dir.path()).unwrap();
    let (mut tokens, mut nll) = (0usize, 0f64);
    let mut examples = Vec::new();
    for (i, (q, a)) in PAIRS.iter().enumerate() {
        let (ids, labels) = encode_answer(&chat(q, a), &tok).unwrap();
        let s = model.score(&ids, Some(&labels), DEFAULT_CHUNK).unwrap();
        tokens += s.tokens;
        nll += s.nll;
        examples.push(Example { ids, labels, line: i + 1 });
    }
    let want_tokens: usize = examples.iter().map(Example::label_count).sum();
    assert_eq!(tokens, want_tokens);
    let pad = tok.special_tokens().eos.unwrap_or(0);
    let trainer_view = LlamaForTraining::full(Llama::load(dir.path()).unwrap()).unwrap();
    let eval = evaluate(&trainer_view, &examples, 2, pad).unwrap().unwrap();
    let ours = nll / tokens as f64;
    assert!((ours - eval.loss).abs() < 1e-4 * eval.loss, "score {ours} vs trainer {}", eval.loss);
}
