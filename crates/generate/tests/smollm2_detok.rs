//! Incremental detokenization with the real SmolLM2 tokenizer (byte-level BPE, where emoji and
//! CJK characters span several tokens): the streamed deltas never hold U+FFFD for a character
//! that a later token completes, and they add up to the full decode.
use rand::{Rng, SeedableRng, rngs::StdRng};
use tinyforge_generate::Detokenizer;
use tinyforge_tokenizer::Tokenizer;

fn stream(tok: &Tokenizer, ids: &[u32]) -> Vec<String> {
    let mut d = Detokenizer::new();
    let mut out: Vec<String> = ids.iter().map(|&id| d.push(tok, id).unwrap()).collect();
    out.push(d.flush(tok).unwrap());
    out
}

#[test]
fn deltas_of_smollm2_tokens_are_whole_characters_and_add_up() {
    let Some(gguf) = tinyforge_testkit::smollm2_gguf() else { return };
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    let text = "Grüße aus Köln! 日本語のテキスト 🎉🚀 naïve café — ∑x² ≥ 0\n\tend";
    let ids = tok.encode(text, false).unwrap();
    let split = ids.iter().filter(|&&id| tok.decode(&[id], true).unwrap().contains('\u{FFFD}')).count();
    assert!(split >= 2, "the text must contain characters split across tokens ({split})");
    let deltas = stream(&tok, &ids);
    assert!(deltas.iter().all(|d| !d.contains('\u{FFFD}')), "{deltas:?}");
    assert_eq!(deltas.concat(), tok.decode(&ids, true).unwrap());
    assert_eq!(deltas.concat(), text);

    // Arbitrary id sequences (what a sampler at a high temperature emits): still the full decode.
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..20 {
        let ids: Vec<u32> = (0..40).map(|_| rng.random_range(0..tok.vocab_size() as u32)).collect();
        assert_eq!(stream(&tok, &ids).concat(), tok.decode(&ids, true).unwrap(), "{ids:?}");
    }
}
