//! TinyForge model: a Llama-family decoder in candle (`llama`), its Hugging Face config
//! (`config`), checkpoint loading from HF safetensors or GGUF (`weights`), the model as a
//! `tinyforge_generate::Decoder` with a KV cache per slot (`decoder`), teacher-forced scoring of
//! token sequences for eval loss and perplexity (`score`), and tiny random models for
//! tests (`tiny`). Pure Rust, no napi: the binding crate wraps it.
pub mod bf16;
pub mod config;
pub mod decoder;
pub mod error;
pub mod fast_exp;
pub mod kernels;
pub mod llama;
pub mod score;
pub mod tiny;
pub mod weights;

pub use config::{LlamaConfig, RopeScaling};
pub use decoder::LlamaDecoder;
pub use error::{ModelError, Result};
pub use llama::{ForwardMode, FrozenLinear, Llama, Projection};
pub use score::Score;
pub use tiny::{TinyModel, TinyOptions, create_tiny_model};
pub use weights::{Checkpoint, ModelFormat, Weights, detect_format, load_checkpoint, load_config};
