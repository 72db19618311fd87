//! TinyForge inference: ONNX Runtime (through `ort`, loaded dynamically from the library the
//! `onnxruntime-node` npm package ships) sessions over host tensors. The generation loop,
//! sampling and batching build on `OnnxSession`.
pub mod decoder;
pub mod engine;
pub mod error;
pub mod folder;
mod last_logits;
mod memory;
pub mod runtime;
mod scheduler;
pub mod score;
pub mod session;
mod shared_kv;

pub use decoder::{DecoderOptions, KvMode, KvShape, OrtDecoder, Spinning};
pub use engine::{CancelHandle, EngineError, EngineOptions, Event, InferenceSession, Request, SessionInfo, Sink};
pub use error::InferError;
pub use folder::ExportFolder;
pub use runtime::{RuntimeInfo, active_runtime, init_runtime, precheck_library};
pub use score::{Score, Scorer};
pub use session::{HostTensor, OnnxSession, OptimizationLevel, SessionOptions, TensorData, TensorInfo};
