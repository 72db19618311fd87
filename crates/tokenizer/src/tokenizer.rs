//! `Tokenizer`: one type over a `tokenizers` tokenizer (loaded from tokenizer.json or built from
//! GGUF metadata), our fast byte-level BPE encoder when it applies, the special token ids and the
//! chat template.
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use crate::chat::{self, ChatMessage, ChatOptions, TemplateTokens};
use crate::error::{Result, TokenizerError};
use crate::fast::FastEncoder;
use crate::gguf;
use crate::special_tokens::SpecialTokens;

/// Token ids with the byte span (start, end) of `text` each came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodingWithOffsets {
    pub ids: Vec<u32>,
    pub offsets: Vec<(usize, usize)>,
}

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    fast: Option<FastEncoder>,
    special: SpecialTokens,
    chat_template: Option<String>,
    /// Where a chat template was looked for (for the error when there is none).
    template_sources: String,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("fast_path", &self.fast.is_some())
            .field("special", &self.special)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Loads `tokenizer.json` (or `<dir>/tokenizer.json` when given a model folder); reads
    /// `chat_template.jinja` or `tokenizer_config.json` next to it (if present) for the chat
    /// template and the BOS/EOS/PAD/UNK tokens.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let given = path.as_ref();
        let in_dir = given.join("tokenizer.json");
        let path = if given.is_dir() { in_dir.as_path() } else { given };
        let json = std::fs::read_to_string(path).map_err(|e| TokenizerError::load(path, e))?;
        let inner = json.parse::<tokenizers::Tokenizer>().map_err(|e| TokenizerError::load(path, e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let config = read_config(&dir.join("tokenizer_config.json"))?;
        let mut chat_template = config.as_ref().and_then(template_from_config);
        let jinja = dir.join("chat_template.jinja");
        if let Ok(source) = std::fs::read_to_string(&jinja) {
            chat_template = Some(source);
        }
        let mut tok = Self::build(
            inner,
            SpecialTokens::default(),
            chat_template,
            format!("{} and {}", jinja.display(), dir.join("tokenizer_config.json").display()),
        );
        if let Some(config) = &config {
            tok.special = SpecialTokens::from_config(config, |t| tok.token_to_id(t));
        }
        Ok(tok)
    }

    /// Parses the contents of a `tokenizer.json` (no chat template, no special-token config).
    pub fn from_json(json: &str) -> Result<Self> {
        let inner = json.parse::<tokenizers::Tokenizer>().map_err(|e| TokenizerError::load("<json>", e))?;
        Ok(Self::build(inner, SpecialTokens::default(), None, "the JSON given (it has none)".into()))
    }

    /// Builds the tokenizer a GGUF file describes in its metadata.
    pub fn from_gguf(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let g = gguf::load(path)?;
        Ok(Self::build(g.inner, g.special, g.chat_template, format!("{} (tokenizer.chat_template)", path.display())))
    }

    fn build(inner: tokenizers::Tokenizer, special: SpecialTokens, chat_template: Option<String>, template_sources: String) -> Self {
        let fast = serde_json::to_value(&inner).ok().and_then(|json| FastEncoder::from_tokenizer_json(&json));
        Self { inner, fast, special, chat_template, template_sources }
    }

    /// Replaces the chat template (e.g. one read from a model's own config).
    pub fn set_chat_template(&mut self, source: Option<String>) {
        self.chat_template = source;
    }

    /// True when `encode` runs our byte-level BPE instead of the `tokenizers` crate.
    pub fn uses_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        match &self.fast {
            Some(fast) if fast.handles(add_special_tokens) => Ok(fast.encode(text, add_special_tokens)),
            _ => self.encode_reference(text, add_special_tokens),
        }
    }

    /// Encodes with the `tokenizers` crate only (the reference the fast path is tested against).
    pub fn encode_reference(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self.inner.encode_fast(text, add_special_tokens).map_err(TokenizerError::tokenize)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Encodes many texts in parallel (rayon, all cores).
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S], add_special_tokens: bool) -> Result<Vec<Vec<u32>>> {
        texts.par_iter().map(|t| self.encode(t.as_ref(), add_special_tokens)).collect()
    }

    /// Ids plus the byte span of `text` each token covers (special tokens added by the
    /// post-processor get (0, 0)).
    pub fn encode_with_offsets(&self, text: &str, add_special_tokens: bool) -> Result<EncodingWithOffsets> {
        let enc = self.inner.encode(text, add_special_tokens).map_err(TokenizerError::tokenize)?;
        Ok(EncodingWithOffsets { ids: enc.get_ids().to_vec(), offsets: enc.get_offsets().to_vec() })
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(TokenizerError::tokenize)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn special_tokens(&self) -> SpecialTokens {
        self.special
    }

    /// The added tokens marked special, as (id, content), sorted by id.
    pub fn special_added_tokens(&self) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> =
            self.inner.get_added_tokens_decoder().into_iter().filter(|(_, t)| t.special).map(|(id, t)| (id, t.content)).collect();
        out.sort();
        out
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Renders the model's chat template for `messages`, as transformers does.
    pub fn apply_chat_template(&self, messages: &[ChatMessage], options: &ChatOptions) -> Result<String> {
        let source =
            self.chat_template.as_deref().ok_or_else(|| TokenizerError::NoChatTemplate { looked_in: self.template_sources.clone() })?;
        let name = |id: Option<u32>| id.and_then(|i| self.id_to_token(i));
        let tokens = TemplateTokens {
            bos: name(self.special.bos),
            eos: name(self.special.eos),
            unk: name(self.special.unk),
            pad: name(self.special.pad),
        };
        chat::render(source, messages, options, &tokens)
    }

    /// The tokenizer as `tokenizer.json` text (what `from_json`/`from_file` read back).
    pub fn to_json(&self, pretty: bool) -> Result<String> {
        self.inner.to_string(pretty).map_err(TokenizerError::tokenize)
    }

    /// Writes `tokenizer.json` to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = self.to_json(false)?;
        std::fs::write(path, json).map_err(|e| TokenizerError::Save { path: PathBuf::from(path), reason: e.to_string() })
    }

    /// Writes a Hugging Face tokenizer folder: `tokenizer.json` plus a `tokenizer_config.json`
    /// with the special tokens and the chat template, which `from_file(dir)` (and transformers'
    /// `AutoTokenizer`) read back.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let fail = |path: PathBuf, e: &dyn std::fmt::Display| TokenizerError::Save { path, reason: e.to_string() };
        std::fs::create_dir_all(dir).map_err(|e| fail(dir.into(), &e))?;
        self.save(dir.join("tokenizer.json"))?;
        let name = |id: Option<u32>| id.and_then(|i| self.id_to_token(i)).map_or(Value::Null, Value::from);
        let mut config = serde_json::Map::new();
        config.insert("tokenizer_class".into(), Value::from("PreTrainedTokenizerFast"));
        config.insert("bos_token".into(), name(self.special.bos));
        config.insert("eos_token".into(), name(self.special.eos));
        config.insert("pad_token".into(), name(self.special.pad));
        config.insert("unk_token".into(), name(self.special.unk));
        if let Some(t) = &self.chat_template {
            config.insert("chat_template".into(), Value::from(t.as_str()));
        }
        let path = dir.join("tokenizer_config.json");
        let text = serde_json::to_string_pretty(&Value::Object(config)).map_err(|e| fail(path.clone(), &e))?;
        std::fs::write(&path, text + "\n").map_err(|e| fail(path, &e))
    }
}

fn read_config(path: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| TokenizerError::load(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TokenizerError::load(path, e)),
    }
}

/// `chat_template` is a string, or a list of `{name, template}` (the one named "default" is used,
/// else the first).
fn template_from_config(config: &Value) -> Option<String> {
    match &config["chat_template"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => {
            list.iter().find(|t| t["name"] == "default").or_else(|| list.first()).and_then(|t| t["template"].as_str()).map(str::to_string)
        }
        _ => None,
    }
}
