//! TinyForge onnx.
