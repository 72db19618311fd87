//! TinyForge tokenizer: Hugging Face `tokenizer.json` files and GGUF tokenizer metadata behind one
//! `Tokenizer` type, with a fast byte-level BPE encoder (identical ids to the `tokenizers` crate,
//! several times faster) and Jinja chat templates rendered as transformers renders them.
mod bpe;
mod chat;
mod error;
mod fast;
mod gguf;
mod pretokenize;
mod special_tokens;
mod tokenizer;

pub use chat::{ChatMessage, ChatOptions};
pub use error::{Result, TokenizerError};
pub use special_tokens::SpecialTokens;
pub use tokenizer::{EncodingWithOffsets, Tokenizer};
