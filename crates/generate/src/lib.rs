//! TinyForge generation: the one loop from a request to text, shared by every model runtime.
//!
//! A `Decoder` (candle's `Llama` in tinyforge-model, ONNX Runtime in tinyforge-infer) turns ids
//! into logits per KV-cache slot; everything else lives here, free of any tensor library:
//! prompt building from the chat template (`prompt`), sampling with penalties and a seeded
//! generator (`sampling`), incremental UTF-8-safe detokenization (`detok`), stop strings
//! (`stop`), the per-request state machine with finish reasons and log-probabilities
//! (`sequence`), and the single-stream driver (`driver`).
pub mod decoder;
pub mod detok;
pub mod driver;
pub mod error;
pub mod prompt;
pub mod sampling;
pub mod sequence;
pub mod stop;

pub use decoder::{Decoder, Slot};
pub use detok::Detokenizer;
pub use driver::{Request, generate, generate_ids};
pub use error::{CodedError, GenerateError, Result};
pub use prompt::{Prompt, build_prompt, eos_ids};
pub use sampling::{SamplingParams, TokenLogprob, argmax};
pub use sequence::{FinishReason, GenerateParams, Generation, MAX_TOP_LOGPROBS, Sequence, Step};
pub use stop::StopStrings;
