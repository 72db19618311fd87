//! TinyForge infer.
