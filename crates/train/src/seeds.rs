//! Derived seeds: every random draw of a run (epoch order, eval split, LoRA init, dropout masks,
//! the dropout streams of lanes 1..) comes from a generator seeded by `(seed, purpose, counter)`.
//! Nothing but the run's seed and a counter is stored, so a checkpoint's (seed, step) restores
//! every stream exactly.
use rand::{SeedableRng, rngs::StdRng};

pub const PURPOSE_ORDER: u64 = 1;
pub const PURPOSE_SPLIT: u64 = 2;
pub const PURPOSE_DROPOUT: u64 = 3;
pub const PURPOSE_INIT: u64 = 4;
/// Dropout streams of lanes 1.. of a micro-batch (lane 0 uses the micro-batch's own seed).
pub const PURPOSE_LANE: u64 = 5;
/// The partition of rehearsal passages over epochs (`epoch_plan`).
pub const PURPOSE_REHEARSAL: u64 = 6;

/// A generator for (seed, purpose, n): independent streams without storing generator state.
pub fn derived_rng(seed: u64, purpose: u64, n: u64) -> StdRng {
    StdRng::seed_from_u64(derived_seed(seed, purpose, n))
}

/// The seed `derived_rng` uses.
pub fn derived_seed(seed: u64, purpose: u64, n: u64) -> u64 {
    // SplitMix64-style mixing so nearby inputs give unrelated seeds.
    let mut z = seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
