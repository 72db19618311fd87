//! The generation loop over fake decoders and a byte-per-token tokenizer (see `common`):
//! UTF-8-safe streaming, stop strings, EOS and length limits, seeds, and batched stepping that
//! gives each sequence exactly what it gets alone.
mod common;

use common::{EOS, HashDecoder, ScriptDecoder, byte_tokenizer};
use tinyforge_generate::{
    Decoder, Detokenizer, FinishReason, GenerateError, GenerateParams, Prompt, Request, SamplingParams, Sequence, generate, generate_ids,
};

fn params(max_tokens: usize) -> GenerateParams {
    GenerateParams { max_tokens, ..Default::default() }
}

#[test]
fn detokenizer_never_emits_half_a_character() {
    let tok = byte_tokenizer();
    let text = "héllo wörld — 日本 🎉!";
    let ids = tok.encode(text, false).unwrap();
    assert_eq!(ids.len(), text.len(), "one token per byte");
    let mut d = Detokenizer::new();
    let mut deltas = Vec::new();
    for &id in &ids {
        deltas.push(d.push(&tok, id).unwrap());
    }
    assert!(deltas.iter().all(|s| !s.contains('\u{FFFD}')), "{deltas:?}");
    assert_eq!(deltas[1], "", "first byte of é");
    assert_eq!(deltas[2], "é");
    assert_eq!(deltas.concat(), text);
    assert_eq!(d.flush(&tok).unwrap(), "");
    // An incomplete character at the very end is flushed the way a full decode renders it.
    let mut d = Detokenizer::new();
    let cut = &"a日".as_bytes()[..2];
    let mut s: String = cut.iter().map(|&b| d.push(&tok, u32::from(b)).unwrap()).collect();
    s += &d.flush(&tok).unwrap();
    assert_eq!(s, tok.decode(&[u32::from(cut[0]), u32::from(cut[1])], true).unwrap());
}

#[test]
fn streamed_deltas_add_up_to_the_text_and_stop_cuts_before_the_stop() {
    let tok = byte_tokenizer();
    let mut dec = ScriptDecoder::new("Olá, ünïcode!</s> tail", 1000);
    let p = GenerateParams { stop: vec!["</s>".into()], ..params(100) };
    let mut streamed = String::new();
    let mut step_logprobs = Vec::new();
    let g = generate_ids(&mut dec, &tok, &[EOS], &[1, 2], &p, |s| {
        streamed += &s.text;
        assert!(!s.text.contains('\u{FFFD}'));
        assert_eq!(s.token.is_some(), s.logprob.is_some());
        step_logprobs.extend(s.logprob);
        true
    })
    .unwrap();
    assert_eq!(step_logprobs, g.logprobs, "each step reports its token's log-probability");
    assert_eq!(g.text, "Olá, ünïcode!");
    assert_eq!(streamed, g.text);
    assert_eq!(g.finish_reason, FinishReason::Stop);
    assert_eq!(g.tokens.len(), "Olá, ünïcode!</s>".len(), "tokens of the stop string are kept");
    assert!(dec.pos.is_empty(), "the slot is released");
}

#[test]
fn eos_max_tokens_and_context_window_end_generation() {
    let tok = byte_tokenizer();
    let g = generate_ids(&mut ScriptDecoder::new("hi", 1000), &tok, &[EOS], &[1], &params(10), |_| true).unwrap();
    assert_eq!((g.text.as_str(), g.finish_reason), ("hi", FinishReason::Eos));
    assert_eq!(g.logprobs.len(), 2);
    let eos_lp = g.eos_logprob.expect("the EOS choice is recorded");
    let want = -(1.0 + 256.0 * (-10f64).exp()).ln(); // logit 10 against 256 zeros
    assert!((f64::from(eos_lp) - want).abs() < 1e-6, "{eos_lp} vs {want}");
    let conf = g.confidence().unwrap();
    assert!(conf > 0.98 && conf <= 1.0, "{conf}");

    let g = generate_ids(&mut ScriptDecoder::new("abcdef", 1000), &tok, &[EOS], &[1], &params(3), |_| true).unwrap();
    assert_eq!((g.text.as_str(), g.finish_reason, g.eos_logprob), ("abc", FinishReason::Length, None));

    // Context 6 with a 4-token prompt: two positions left.
    let g = generate_ids(&mut ScriptDecoder::new("abcdef", 6), &tok, &[EOS], &[1, 2, 3, 4], &params(50), |_| true).unwrap();
    assert_eq!((g.text.as_str(), g.finish_reason), ("ab", FinishReason::Length));

    let e = generate_ids(&mut ScriptDecoder::new("a", 4), &tok, &[EOS], &[1, 2, 3, 4], &params(5), |_| true).unwrap_err();
    assert!(matches!(e, GenerateError::PromptTooLong { prompt_tokens: 4, context_len: 4 }), "{e}");
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    let e = generate_ids(&mut ScriptDecoder::new("a", 9), &tok, &[EOS], &[1], &params(0), |_| true).unwrap_err();
    assert!(e.to_string().starts_with("maxTokens"), "{e}");
}

#[test]
fn cancelling_from_the_stream_ends_with_cancelled() {
    let tok = byte_tokenizer();
    let mut n = 0;
    let g = generate_ids(&mut ScriptDecoder::new("abcdef", 100), &tok, &[EOS], &[1], &params(50), |_| {
        n += 1;
        n < 3
    })
    .unwrap();
    assert_eq!((g.text.as_str(), g.finish_reason), ("abc", FinishReason::Cancelled));
}

#[test]
fn same_seed_same_text_other_seeds_differ() {
    let tok = byte_tokenizer();
    let sampled = |seed| GenerateParams {
        sampling: SamplingParams { temperature: 1.0, top_p: Some(0.95), seed, ..Default::default() },
        top_logprobs: 3,
        ..params(20)
    };
    let run = |p: &GenerateParams| generate_ids(&mut HashDecoder::new(), &tok, &[EOS], &[10, 20, 30], p, |_| true).unwrap();
    let a = run(&sampled(7));
    assert_eq!(a, run(&sampled(7)));
    assert!([8, 9, 10].iter().any(|&s| run(&sampled(s)).tokens != a.tokens));
    assert!(a.top_logprobs.iter().all(|t| t.len() == 3 && t[0].logprob >= t[1].logprob && t[1].logprob >= t[2].logprob));
    // Greedy ignores the seed.
    assert_eq!(
        run(&params(20)).tokens,
        run(&GenerateParams { sampling: SamplingParams { seed: 3, ..Default::default() }, ..params(20) }).tokens
    );
}

#[test]
fn batched_steps_give_each_sequence_what_it_gets_alone() {
    let tok = byte_tokenizer();
    let prompts: Vec<Vec<u32>> = (0..5u32).map(|i| (0..=i).map(|j| 40 + i * 7 + j).collect()).collect();
    let p = |i: u64| GenerateParams {
        sampling: SamplingParams { temperature: if i.is_multiple_of(2) { 0.0 } else { 0.8 }, seed: i, ..Default::default() },
        ..params(12 + i as usize)
    };
    let alone: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, ids)| generate_ids(&mut HashDecoder::new(), &tok, &[EOS], ids, &p(i as u64), |_| true).unwrap())
        .collect();

    // Continuous batching: sequence i joins at step i (prefill between steps), leaves when done.
    let mut dec = HashDecoder::new();
    let mut live: Vec<(usize, Sequence)> = Vec::new();
    let mut done = vec![None; prompts.len()];
    let mut joined = 0;
    while done.iter().any(Option::is_none) {
        if joined < prompts.len() {
            let mut seq = Sequence::new(&prompts[joined], p(joined as u64), &[EOS], dec.context_len()).unwrap();
            let logits = dec.prefill(joined, &prompts[joined]).unwrap();
            seq.accept(&logits, &tok).unwrap();
            live.push((joined, seq));
            joined += 1;
        }
        for (slot, seq) in live.iter().filter(|(_, s)| s.is_finished()) {
            done[*slot] = Some(seq.generation());
            dec.release(*slot);
        }
        live.retain(|(_, s)| !s.is_finished());
        let batch: Vec<_> = live.iter().map(|(slot, s)| (*slot, s.next_input().unwrap())).collect();
        if batch.is_empty() {
            continue;
        }
        let rows = dec.step(&batch).unwrap();
        for (i, (_, seq)) in live.iter_mut().enumerate() {
            seq.accept(&rows[i * dec.vocab_size()..(i + 1) * dec.vocab_size()], &tok).unwrap();
        }
    }
    let batched: Vec<_> = done.into_iter().map(Option::unwrap).collect();
    assert_eq!(batched, alone);
    assert!(dec.history.is_empty());
}

#[test]
fn request_builds_the_prompt_from_text_or_messages() {
    let tok = byte_tokenizer();
    let req = Request { prompt: Prompt::Text("hey".into()), chat_template: None, params: params(2) };
    let mut dec = HashDecoder::new();
    let g = generate(&mut dec, &tok, &[EOS], &req).unwrap();
    assert_eq!(g.prompt_tokens, 3, "no template: the raw text's bytes");
    let msgs = Request { prompt: Prompt::Messages(vec![]), ..req.clone() };
    assert_eq!(generate(&mut dec, &tok, &[EOS], &msgs).unwrap_err().code(), "INVALID_ARGUMENT");
    let chat = Request { prompt: Prompt::Messages(vec![tinyforge_tokenizer::ChatMessage::new("user", "hey")]), ..req };
    assert_eq!(generate(&mut dec, &tok, &[EOS], &chat).unwrap_err().code(), "CHAT_TEMPLATE_MISSING");
}
