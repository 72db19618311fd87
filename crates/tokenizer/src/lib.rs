//! TinyForge tokenizer.
