//! Binding of `tinyforge_tokenizer`: the `Tokenizer` class (tokenizer.json or GGUF, encode,
//! decode, chat templates). Ids cross as `Uint32Array`s; offsets as UTF-16 code-unit spans, the
//! unit JS strings are indexed in.
use std::sync::Arc;

use napi::Either;
use napi::bindgen_prelude::{AsyncTask, Uint32Array, Uint32ArraySlice};
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_tokenizer as tk;

use crate::error::{core_error, guard};

#[napi(object, js_name = "EncodeOptions")]
pub struct JsEncodeOptions {
    /// Add the tokens the tokenizer's post-processor puts around a text (e.g. BOS). @default true
    pub add_special_tokens: Option<bool>,
}

#[napi(object, js_name = "DecodeOptions")]
pub struct JsDecodeOptions {
    /// Leave special tokens (`<|im_end|>`) out of the text. @default false
    pub skip_special_tokens: Option<bool>,
}

#[napi(object, js_name = "ChatMessage")]
pub struct JsChatMessage {
    pub role: String,
    pub content: String,
}

#[napi(object, js_name = "ChatTemplateOptions")]
pub struct JsChatTemplateOptions {
    /// Append the header that opens the assistant's turn. @default false
    pub add_generation_prompt: Option<bool>,
}

#[napi(object, object_from_js = false, js_name = "EncodingWithOffsets")]
pub struct JsEncodingWithOffsets {
    pub ids: Uint32Array,
    /// `[start, end]` of each token in UTF-16 code units of the input (`text.slice(start, end)`).
    pub offsets: Vec<Vec<u32>>,
}

fn add_special(options: Option<&JsEncodeOptions>) -> bool {
    options.and_then(|o| o.add_special_tokens).unwrap_or(true)
}

#[napi(js_name = "Tokenizer")]
pub struct JsTokenizer {
    inner: Arc<tk::Tokenizer>,
}

#[napi]
impl JsTokenizer {
    /// Loads a `tokenizer.json` (and `tokenizer_config.json` / `chat_template.jinja` beside it).
    #[napi(factory, catch_unwind, writable = true, configurable = true)]
    pub fn from_file(path: String) -> napi::Result<Self> {
        guard("loading a tokenizer", || Ok(Self { inner: Arc::new(tk::Tokenizer::from_file(&path).map_err(core_error)?) }))
    }

    /// Builds the tokenizer (and chat template) a GGUF model file carries in its metadata.
    #[napi(factory, catch_unwind, writable = true, configurable = true)]
    pub fn from_gguf(path: String) -> napi::Result<Self> {
        guard("loading a GGUF tokenizer", || Ok(Self { inner: Arc::new(tk::Tokenizer::from_gguf(&path).map_err(core_error)?) }))
    }

    /// Parses `tokenizer.json` text.
    #[napi(factory, catch_unwind, writable = true, configurable = true)]
    pub fn from_json(json: String) -> napi::Result<Self> {
        guard("parsing tokenizer.json", || Ok(Self { inner: Arc::new(tk::Tokenizer::from_json(&json).map_err(core_error)?) }))
    }

    // Results are copied into a plain ArrayBuffer: V8 external buffers with finalizers cost more
    // per call than copying a few KB.
    #[napi(catch_unwind)]
    pub fn encode<'env>(&self, env: &'env Env, text: String, options: Option<JsEncodeOptions>) -> napi::Result<Uint32ArraySlice<'env>> {
        let ids = guard("encoding", || self.inner.encode(&text, add_special(options.as_ref())).map_err(core_error))?;
        Uint32ArraySlice::copy_from(env, ids)
    }

    #[napi(catch_unwind)]
    pub fn encode_with_offsets(&self, text: String, options: Option<JsEncodeOptions>) -> napi::Result<JsEncodingWithOffsets> {
        guard("encoding with offsets", || {
            let enc = self.inner.encode_with_offsets(&text, add_special(options.as_ref())).map_err(core_error)?;
            // Byte offset → UTF-16 offset, for every char boundary of the text.
            let mut utf16 = vec![0u32; text.len() + 1];
            let mut units = 0u32;
            for (i, c) in text.char_indices() {
                utf16[i] = units;
                units += c.len_utf16() as u32;
            }
            utf16[text.len()] = units;
            let offsets = enc.offsets.iter().map(|&(s, e)| vec![utf16[s], utf16[e]]).collect();
            Ok(JsEncodingWithOffsets { ids: Uint32Array::new(enc.ids), offsets })
        })
    }

    /// Encodes many texts on all cores (synchronous: about 25 MB/s per core).
    #[napi(catch_unwind)]
    pub fn encode_batch<'env>(
        &self,
        env: &'env Env,
        texts: Vec<String>,
        options: Option<JsEncodeOptions>,
    ) -> napi::Result<Vec<Uint32ArraySlice<'env>>> {
        let ids = guard("encoding a batch", || self.inner.encode_batch(&texts, add_special(options.as_ref())).map_err(core_error))?;
        ids.into_iter().map(|v| Uint32ArraySlice::copy_from(env, v)).collect()
    }

    /// `encodeBatch` off the event loop.
    #[napi(catch_unwind, ts_return_type = "Promise<Uint32Array[]>")]
    pub fn encode_batch_async(&self, texts: Vec<String>, options: Option<JsEncodeOptions>) -> AsyncTask<EncodeBatchTask> {
        AsyncTask::new(EncodeBatchTask { tokenizer: self.inner.clone(), texts, add_special_tokens: add_special(options.as_ref()) })
    }

    #[napi(catch_unwind)]
    pub fn decode(&self, ids: Either<Uint32Array, Vec<u32>>, options: Option<JsDecodeOptions>) -> napi::Result<String> {
        let skip = options.and_then(|o| o.skip_special_tokens).unwrap_or(false);
        let ids: &[u32] = match &ids {
            Either::A(typed) => typed,
            Either::B(list) => list,
        };
        guard("decoding", || self.inner.decode(ids, skip).map_err(core_error))
    }

    /// Renders the model's chat template, as Hugging Face transformers does.
    #[napi(catch_unwind)]
    pub fn apply_chat_template(&self, messages: Vec<JsChatMessage>, options: Option<JsChatTemplateOptions>) -> napi::Result<String> {
        let messages: Vec<tk::ChatMessage> = messages.into_iter().map(|m| tk::ChatMessage::new(m.role, m.content)).collect();
        let options =
            tk::ChatOptions { add_generation_prompt: options.and_then(|o| o.add_generation_prompt).unwrap_or(false), tools: None };
        guard("rendering the chat template", || self.inner.apply_chat_template(&messages, &options).map_err(core_error))
    }

    #[napi(catch_unwind)]
    pub fn token_to_id(&self, token: String) -> napi::Result<Option<u32>> {
        guard("looking up a token", || Ok(self.inner.token_to_id(&token)))
    }

    #[napi(catch_unwind)]
    pub fn id_to_token(&self, id: u32) -> napi::Result<Option<String>> {
        guard("looking up a token id", || Ok(self.inner.id_to_token(id)))
    }

    /// Vocabulary size, added tokens included.
    #[napi(getter)]
    pub fn vocab_size(&self) -> u32 {
        self.inner.vocab_size() as u32
    }

    #[napi(getter)]
    pub fn bos_token_id(&self) -> Option<u32> {
        self.inner.special_tokens().bos
    }

    #[napi(getter)]
    pub fn eos_token_id(&self) -> Option<u32> {
        self.inner.special_tokens().eos
    }

    #[napi(getter)]
    pub fn pad_token_id(&self) -> Option<u32> {
        self.inner.special_tokens().pad
    }

    /// The added tokens marked special, e.g. `<|im_start|>`, sorted by id.
    #[napi(getter)]
    pub fn special_tokens(&self) -> Vec<String> {
        self.inner.special_added_tokens().into_iter().map(|(_, t)| t).collect()
    }

    /// The Jinja chat template source, or null.
    #[napi(getter)]
    pub fn chat_template(&self) -> Option<String> {
        self.inner.chat_template().map(str::to_string)
    }

    /// The tokenizer as `tokenizer.json` text.
    #[napi(catch_unwind)]
    pub fn to_json(&self, pretty: Option<bool>) -> napi::Result<String> {
        guard("serializing the tokenizer", || self.inner.to_json(pretty.unwrap_or(false)).map_err(core_error))
    }

    /// Writes `tokenizer.json` to `path`.
    #[napi(catch_unwind)]
    pub fn save(&self, path: String) -> napi::Result<()> {
        guard("saving the tokenizer", || self.inner.save(&path).map_err(core_error))
    }

    /// Writes a Hugging Face tokenizer folder (`tokenizer.json` + `tokenizer_config.json` with
    /// the special tokens and chat template) that `fromFile(dir)` and transformers read back.
    #[napi(catch_unwind)]
    pub fn save_pretrained(&self, dir: String) -> napi::Result<()> {
        guard("saving the tokenizer folder", || self.inner.save_pretrained(&dir).map_err(core_error))
    }
}

pub struct EncodeBatchTask {
    tokenizer: Arc<tk::Tokenizer>,
    texts: Vec<String>,
    add_special_tokens: bool,
}

impl Task for EncodeBatchTask {
    type Output = Vec<Vec<u32>>;
    type JsValue = Vec<Uint32Array>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("encoding a batch", || self.tokenizer.encode_batch(&self.texts, self.add_special_tokens).map_err(core_error))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output.into_iter().map(Uint32Array::new).collect())
    }
}
