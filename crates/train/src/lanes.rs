//! Lanes: each micro-batch is split into `LANES` groups of rows that run forward and backward as
//! independent graphs in parallel, their losses and gradients added in lane order. Within one
//! graph, the GEMMs and fused kernels use both cores but candle's graph bookkeeping and
//! elementwise ops run on one: two graphs side by side keep both cores busy through those parts
//! too. The count is fixed (not the number of threads), so a run gives the same loss sequence on
//! every machine; each lane draws its dropout masks from its own stream (`lane_seed`), so lanes
//! running side by side draw the same masks whatever the timing.
use std::cell::Cell;

use crate::{
    batches::{Batch, make_batch},
    data::Example,
    seeds::{PURPOSE_LANE, derived_seed},
};

pub const LANES: usize = 2;

thread_local! {
    /// The lane whose forward pass this thread is running (see `in_lane`).
    static LANE: Cell<usize> = const { Cell::new(0) };
}

/// The lanes of one micro-batch: its rows split in order into up to `LANES` padded batches.
pub fn lane_batches(rows: &[&Example], pad_id: u32) -> candle_core::Result<Vec<Batch>> {
    rows.chunks(rows.len().div_ceil(LANES).max(1)).map(|lane| make_batch(lane, pad_id)).collect()
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
