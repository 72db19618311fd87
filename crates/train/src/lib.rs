//! TinyForge train.
