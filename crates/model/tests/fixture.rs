//! The committed tiny-model fixture (`tests/data/tiny`) is exactly what `create_tiny_model` makes
//! from these options, so the parity references in `tests/data/reference_tiny.json` (made by
//! `make_reference.py` with HF transformers) test today's code, not a stale folder.
//! Regenerate after an intended change: `TINYFORGE_REGEN_FIXTURES=1 cargo test --release -p tinyforge-model --test fixture`,
//! then rerun `make_reference.py`.
use std::path::PathBuf;

use tinyforge_model::{TinyOptions, create_tiny_model};

pub fn fixture_options() -> TinyOptions {
    TinyOptions {
        layers: 2,
        hidden: 32,
        heads: 4,
        kv_heads: 2,
        intermediate: 64,
        vocab_size: 320,
        seed: 1234,
        // Untied here (the GGUF parity test covers tied embeddings).
        tie_embeddings: false,
        training_text: None,
    }
}

#[test]
fn fixture_matches_generator() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny");
    if std::env::var("TINYFORGE_REGEN_FIXTURES").is_ok() {
        create_tiny_model(&data, &fixture_options()).unwrap();
    }
    let tmp = tinyforge_testkit::temp_dir("fixture");
    let fresh = tmp.path();
    create_tiny_model(fresh, &fixture_options()).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        let committed = std::fs::read(data.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(committed == std::fs::read(fresh.join(f)).unwrap(), "tests/data/tiny/{f} is not what the generator makes now");
    }
}
