//! TinyForge's ONNX writer: our own protobuf message types (`proto`, hand-written `prost`
//! derives, field numbers from `onnx.proto3`) and a `GraphBuilder` that assembles, checks and
//! atomically saves models. The decoder-with-KV-cache export and INT8 quantization build on this.
pub mod blockwise;
pub mod builder;
pub mod error;
pub mod external_data;
mod fused_ops;
pub mod graph;
mod head;
pub mod llama_export;
mod plain_ops;
pub mod proto;
pub mod quantize;
pub mod scheme;
pub mod smooth;
pub mod tensor;

pub use builder::{DEFAULT_IR_VERSION, DEFAULT_OPSET, Dim, GraphBuilder, decode, load, value_info};
pub use error::OnnxError;
pub use external_data::data_path;
pub use llama_export::{
    CALIBRATION_TEXT, CALIBRATION_TEXT_NAME, CalibrationText, ExportOptions, ExportReport, export_llama, export_llama_path,
    export_llama_scheme, export_llama_with,
};
pub use proto::{DataType, ModelProto};
pub use scheme::{Format, GroupReport, HeadTail, QuantReport, Quantization, Scheme};
pub use tensor::{Attr, tensor_f32, tensor_i8, tensor_i32, tensor_i64, tensor_raw, tensor_u8};
