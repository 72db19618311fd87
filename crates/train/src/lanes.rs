//! Lanes: each micro-batch is split into groups of rows (lanes) that run forward and backward
//! as independent graphs, `LANES` side by side at a time, their losses and gradients added in
//! lane order. Within one graph, the GEMMs and fused kernels use both cores but candle's graph
//! bookkeeping and elementwise ops run on one: two graphs side by side keep both cores busy
//! through those parts too. A lane holds at most `LANE_TOKENS` tokens' worth of rows when the
//! sequences are that long: a graph keeps every layer's activations until its backward pass
//! (~13 MB per 512 tokens per SmolLM2 layer: block input, normed input, q, k, v, attention
//! output, `o_proj` output and the MLP's gate and up activations, 11 x `[512, 576]` f32; 0.78 GB
//! for two lanes of 2 x 256 tokens), so a bigger batch adds rounds instead of memory. Lanes are formed from the data alone (not the
//! number of threads), so a run gives the same loss sequence on every machine; each lane draws
//! its dropout masks from its own stream (`lane_seed`), so lanes running side by side draw the
//! same masks whatever the timing.
use std::cell::Cell;

use crate::{
    batches::{Batch, make_batch},
    data::Example,
    seeds::{PURPOSE_LANE, derived_seed},
};

/// Lanes running side by side.
pub const LANES: usize = 2;

/// Padded tokens a lane is filled to before rows go to another lane (`lane_tokens`). 512 keeps
/// batch 4 x 256 in two lanes of two sequences (its speed) and bounds the memory of bigger
/// batches. Measured on SmolLM2, batch 4 x 256, busy 2-core Xeon, through `train()`: 256 (four
/// one-sequence lanes in two rounds) peaks at 1136 MB RSS against 1608 MB (both before the
/// block tail became one op, `residual_mlp`: 512 then peaked at 1412 MB), at 0.88x the tokens
/// per CPU second (the gemm crate packs each frozen weight once per call, so half the rows per
/// call pay twice the packing per token, and each round waits for its slower lane).
pub const LANE_TOKENS: usize = 512;

/// `LANE_TOKENS`, or `TINYFORGE_LANE_TOKENS` when set to a positive number (read once): 256
/// trades that speed for the memory.
pub fn lane_tokens() -> usize {
    static TOKENS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *TOKENS
        .get_or_init(|| std::env::var("TINYFORGE_LANE_TOKENS").ok().and_then(|v| v.parse().ok()).filter(|&t| t > 0).unwrap_or(LANE_TOKENS))
}

thread_local! {
    /// The lane whose forward pass this thread is running (see `in_lane`).
    static LANE: Cell<usize> = const { Cell::new(0) };
}

/// The lanes of one micro-batch: its rows split in order into padded batches of equal row
/// counts, as few rows per lane as reach `lane_tokens()` padded tokens, but at least `LANES`
/// lanes when there are that many rows.
pub fn lane_batches(rows: &[&Example], pad_id: u32) -> candle_core::Result<Vec<Batch>> {
    let longest = rows.iter().map(|e| e.ids.len()).max().unwrap_or(1).max(1);
    let per_lane = rows.len().div_ceil(LANES).min(lane_tokens().div_ceil(longest)).max(1);
    rows.chunks(per_lane).map(|lane| make_batch(lane, pad_id)).collect()
}

/// Runs `f` as lane `lane`: LoRA layers called inside draw dropout masks from that lane's
/// generator. The previous lane is restored afterwards, which keeps this right when a rayon
/// thread waiting inside one lane runs (a stolen part of) another: such nesting is strictly LIFO.
pub fn in_lane<R>(lane: usize, f: impl FnOnce() -> R) -> R {
    let previous = LANE.with(|l| l.replace(lane));
    let out = f();
    LANE.with(|l| l.set(previous));
    out
}

/// The lane this thread is running (0 outside `in_lane`).
pub fn current_lane() -> usize {
    LANE.with(Cell::get)
}

/// The dropout seed of lane `lane` for a micro-batch seeded `seed`: lane 0 draws from `seed`
/// itself (so a one-lane run draws what it always drew), lane `i` from a stream derived from
/// `(seed, i)`.
pub fn lane_seed(seed: u64, lane: usize) -> u64 {
    if lane == 0 { seed } else { derived_seed(seed, PURPOSE_LANE, lane as u64) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane_rows(n: usize, len: usize) -> Vec<usize> {
        let exs: Vec<Example> = (0..n).map(|_| Example { ids: vec![5; len], labels: vec![true; len], line: 1 }).collect();
        let refs: Vec<&Example> = exs.iter().collect();
        lane_batches(&refs, 0).unwrap().iter().map(|b| b.input_ids.dims2().unwrap().0).collect()
    }

    /// Sequences of `LANE_TOKENS` get a lane each; shorter ones share lanes up to that many
    /// padded tokens, but a micro-batch still fills `LANES` lanes when it has the rows.
    #[test]
    fn lanes_hold_about_lane_tokens_and_at_least_lanes_of_them() {
        assert_eq!(lane_rows(4, LANE_TOKENS), [1, 1, 1, 1]);
        assert_eq!(lane_rows(3, LANE_TOKENS + 44), [1, 1, 1]);
        assert_eq!(lane_rows(8, LANE_TOKENS / 2), [2, 2, 2, 2]);
        assert_eq!(lane_rows(7, LANE_TOKENS / 3 + 1), [3, 3, 1]);
        assert_eq!(lane_rows(4, LANE_TOKENS / 8), [2, 2]);
        assert_eq!(lane_rows(1, 64), [1]);
    }
}
