//! TinyForge model.
