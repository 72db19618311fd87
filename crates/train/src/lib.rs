//! TinyForge train: JSONL records → chat-formatted token batches (`data`, `batches`), LoRA layers
//! (`lora`, `lora_op`) on the Llama of tinyforge-model (`trainable`), AdamW + warmup/cosine
//! schedule (`optim`, `schedule`), the training loop with accumulation, eval and early stopping
//! (`trainer`, set by `loop_config`, logging to `metrics`), each micro-batch split into parallel
//! `lanes`, every random draw from `seeds`, atomic resumable checkpoints (`checkpoint`), PEFT
//! adapter I/O (`adapter`), and the run that ties them into a run folder (`run`). Pure Rust, no
//! napi.
pub mod adapter;
pub mod batches;
pub mod checkpoint;
pub mod data;
pub mod epoch_plan;
pub mod error;
pub mod head_loss;
pub mod hf_folder;
pub mod lanes;
pub mod loop_config;
pub mod lora;
pub mod lora_op;
pub mod manifest;
pub mod merge;
pub mod metrics;
pub mod optim;
pub mod run;
pub mod schedule;
pub mod seeds;
pub mod trainable;
pub mod trainer;

pub use error::{RecordIssue, Result, TrainError};
pub use loop_config::LoopConfig;
pub use lora::LoraConfig;
pub use run::{TrainOptions, TrainReport, train};
pub use trainer::{EvalResult, LoopOutcome, Progress, Trainer};
