//! Tiny random Llama models in the Hugging Face folder format, so tests need no download and run
//! in seconds: `config.json`, `model.safetensors` (f32, normal(0, 0.02) from a fixed seed),
//! `tokenizer.json` (byte-level BPE trained on the given text with SmolLM2's pre-tokenizer:
//! individual digits, then GPT-2 byte-level without prefix space), `tokenizer_config.json` with
//! SmolLM2's ChatML chat template, and `generation_config.json`. Same options + seed ⇒ same bytes.
use std::{collections::HashMap, path::Path};

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use tokenizers::{
    AddedToken, Tokenizer,
    decoders::byte_level::ByteLevel as ByteLevelDecoder,
    models::{
        TrainerWrapper,
        bpe::{BPE, BpeTrainer},
    },
    pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence},
    processors::byte_level::ByteLevel as ByteLevelProcessor,
};

use crate::{
    config::{LlamaConfig, TokenIds},
    error::{ModelError, Result},
};

/// SmolLM2-Instruct's template (read from the GGUF key `tokenizer.chat_template`).
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Ids 0, 1, 2 as in SmolLM2.
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Used when no training text is given: prose, chat turns, code, numbers and whitespace runs so
/// the merges cover what tests feed the model.
const SAMPLE_TEXT: &str = include_str!("tiny_sample.txt");

#[derive(Debug, Clone)]
pub struct TinyOptions {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate: usize,
    pub vocab_size: usize,
    pub seed: u64,
    pub tie_embeddings: bool,
    /// Text the BPE is trained on; `None` uses a built-in sample.
    pub training_text: Option<String>,
}

impl Default for TinyOptions {
    fn default() -> Self {
        Self {
            layers: 2,
            hidden: 64,
            heads: 4,
            kv_heads: 2,
            intermediate: 128,
            vocab_size: 512,
            seed: 0,
            tie_embeddings: true,
            training_text: None,
        }
    }
}

impl TinyOptions {
    pub fn config(&self) -> Result<LlamaConfig> {
        let bad = |m: String| Err(ModelError::Input(m));
        if self.vocab_size < 256 + SPECIAL_TOKENS.len() {
            return bad(format!("vocab_size {} < 259 (256 bytes + 3 special tokens)", self.vocab_size));
        }
        let cfg = LlamaConfig {
            architectures: vec!["LlamaForCausalLM".into()],
            model_type: Some("llama".into()),
            hidden_size: self.hidden,
            intermediate_size: self.intermediate,
            num_hidden_layers: self.layers,
            num_attention_heads: self.heads,
            num_key_value_heads: Some(self.kv_heads),
            head_dim: None,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 2048,
            vocab_size: self.vocab_size,
            tie_word_embeddings: self.tie_embeddings,
            bos_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(2)),
            torch_dtype: Some("float32".into()),
            attention_bias: false,
            mlp_bias: false,
        };
        cfg.validate().map_err(ModelError::Input)?;
        Ok(cfg)
    }
}

/// What `create_tiny_model` wrote.
#[derive(Debug, Clone)]
pub struct TinyModel {
    pub config: LlamaConfig,
    pub parameters: usize,
}

pub fn create_tiny_model(out_dir: &Path, opts: &TinyOptions) -> Result<TinyModel> {
    let cfg = opts.config()?;
    let write_err = |e: &dyn std::fmt::Display| ModelError::Write { path: out_dir.to_path_buf(), reason: e.to_string() };
    std::fs::create_dir_all(out_dir).map_err(|e| write_err(&e))?;

    let tokenizer = train_tokenizer(opts.training_text.as_deref().unwrap_or(SAMPLE_TEXT), opts.vocab_size)?;
    tokenizer.save(out_dir.join("tokenizer.json"), true).map_err(|e| write_err(&e))?;

    let weights = random_weights(&cfg, opts.seed)?;
    candle_core::safetensors::save(&weights, out_dir.join("model.safetensors")).map_err(|e| write_err(&e))?;

    let mut config_json = serde_json::to_value(&cfg).map_err(|e| write_err(&e))?;
    let extra = json!({ "hidden_act": "silu", "initializer_range": 0.02, "pretraining_tp": 1, "use_cache": true });
    config_json.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let added: serde_json::Map<String, serde_json::Value> = SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v = json!({"content": t, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true});
            (i.to_string(), v)
        })
        .collect();
    let tokenizer_config = json!({
        "add_prefix_space": false,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|im_end|>",
        "unk_token": "<|endoftext|>",
        "chat_template": CHATML_TEMPLATE,
        "clean_up_tokenization_spaces": false,
        "model_max_length": cfg.max_position_embeddings,
        "tokenizer_class": "GPT2Tokenizer",
    });
    let generation_config = json!({ "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2 });
    for (name, value) in
        [("config.json", &config_json), ("tokenizer_config.json", &tokenizer_config), ("generation_config.json", &generation_config)]
    {
        let text = serde_json::to_string_pretty(value).map_err(|e| write_err(&e))? + "\n";
        std::fs::write(out_dir.join(name), text).map_err(|e| write_err(&e))?;
    }
    Ok(TinyModel { parameters: cfg.parameter_count(), config: cfg })
}

/// Byte-level BPE with SmolLM2's pre-tokenizer, decoder and special tokens at ids 0..3.
pub fn train_tokenizer(text: &str, vocab_size: usize) -> Result<Tokenizer> {
    let err = |e: &dyn std::fmt::Display| ModelError::Input(format!("tokenizer training failed: {e}"));
    let specials: Vec<AddedToken> = SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect();
    let mut trainer: TrainerWrapper = BpeTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials)
        // All 256 byte symbols, so any input encodes without an unknown token.
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()])));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer.with_post_processor(Some(ByteLevelProcessor::new(false, true, true)));
    // Train on lines so the (parallel) word counting sees many small sequences.
    tokenizer.train(&mut trainer, text.lines().filter(|l| !l.is_empty())).map_err(|e| err(&e))?;
    Ok(tokenizer)
}

/// Deterministic normal(0, 0.02) weights in HF names; RMSNorm weights are 1 + normal(0, 0.1)
/// rather than HF's all-ones so a norm weight applied wrongly shows up in parity tests.
pub fn random_weights(cfg: &LlamaConfig, seed: u64) -> Result<HashMap<String, Tensor>> {
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let hd = cfg.head_dim();
    let (q, kv) = (cfg.num_attention_heads * hd, cfg.num_kv_heads() * hd);
    let mut shapes: Vec<(String, Vec<usize>, bool)> =
        vec![("model.embed_tokens.weight".into(), vec![v, h], false), ("model.norm.weight".into(), vec![h], true)];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        for (name, shape, norm) in [
            ("input_layernorm", vec![h], true),
            ("self_attn.q_proj", vec![q, h], false),
            ("self_attn.k_proj", vec![kv, h], false),
            ("self_attn.v_proj", vec![kv, h], false),
            ("self_attn.o_proj", vec![h, q], false),
            ("post_attention_layernorm", vec![h], true),
            ("mlp.gate_proj", vec![i, h], false),
            ("mlp.up_proj", vec![i, h], false),
            ("mlp.down_proj", vec![h, i], false),
        ] {
            shapes.push((format!("{p}.{name}.weight"), shape, norm));
        }
    }
    if !cfg.tie_word_embeddings {
        shapes.push(("lm_head.weight".into(), vec![v, h], false));
    }
    // One generator consumed in a fixed order: the listing order above, not a HashMap's.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = HashMap::new();
    for (name, shape, norm) in shapes {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| {
                let z = standard_normal(&mut rng);
                if norm { 1.0 + 0.1 * z } else { 0.02 * z }
            })
            .collect();
        out.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
    }
    Ok(out)
}

/// Box–Muller; written out so the stream depends only on the seeded generator.
fn standard_normal(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}
