//! Which examples each epoch trains: every record, plus one slice of the rehearsal passages.
//!
//! The passages (general text trained with the plain LM loss so a small set does not cost the
//! model its general language) are the last `rehearsal` examples of the training split. They are
//! partitioned over the run's epochs, so each is seen once per run while the records get real
//! epochs: on the 30 facts, passages repeated every epoch were memorised (general ppl +278%), and
//! the records repeated inside one shuffled pass instead recalled less (14/30 vs 22/30 with 8
//! epochs). The partition is a seeded permutation cut into `epochs` near-equal runs, so an epoch's
//! members depend on (seed, epoch) only and a resumed run rebuilds them exactly. Past the last
//! epoch (a `max_steps` run) the slices repeat in the same order.
use std::ops::Range;

use rand::seq::SliceRandom;

use crate::seeds::{PURPOSE_REHEARSAL, derived_rng};

/// The examples of a run as records and passages, over `epochs` epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochPlan {
    pub records: usize,
    pub passages: usize,
    pub epochs: usize,
}

impl EpochPlan {
    /// `n_train` examples of which the last `rehearsal` are passages.
    pub fn new(n_train: usize, rehearsal: usize, epochs: usize) -> Self {
        let passages = rehearsal.min(n_train);
        Self { records: n_train - passages, passages, epochs: epochs.max(1) }
    }

    /// Positions (into the seeded passage permutation) of epoch `epoch`'s slice.
    pub fn slice(&self, epoch: usize) -> Range<usize> {
        let e = epoch % self.epochs;
        (e * self.passages / self.epochs)..((e + 1) * self.passages / self.epochs)
    }

    /// Number of examples epoch `epoch` trains.
    pub fn size(&self, epoch: usize) -> usize {
        self.records + self.slice(epoch).len()
    }

    /// Example indices of epoch `epoch`: all records, then its passages (unordered: the batcher shuffles).
    pub fn members(&self, seed: u64, epoch: usize) -> Vec<usize> {
        let mut perm: Vec<usize> = (self.records..self.records + self.passages).collect();
        perm.shuffle(&mut derived_rng(seed, PURPOSE_REHEARSAL, 0));
        let mut out: Vec<usize> = (0..self.records).collect();
        out.extend_from_slice(&perm[self.slice(epoch)]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passages_are_partitioned_over_the_epochs() {
        let plan = EpochPlan::new(90, 60, 10);
        assert_eq!((plan.records, plan.passages), (30, 60));
        let mut seen = Vec::new();
        for e in 0..10 {
            let m = plan.members(7, e);
            assert_eq!(m.len(), 36);
            assert_eq!(plan.size(e), 36);
            assert_eq!(&m[..30], (0..30).collect::<Vec<_>>().as_slice(), "every record each epoch");
            seen.extend_from_slice(&m[30..]);
        }
        seen.sort_unstable();
        assert_eq!(seen, (30..90).collect::<Vec<_>>(), "each passage exactly once per run");
        assert_eq!(plan.members(7, 3), plan.members(7, 3));
        assert_eq!(plan.members(7, 13), plan.members(7, 3), "slices repeat past the last epoch");
        assert_ne!(plan.members(7, 0), plan.members(8, 0), "the partition follows the seed");
    }

    #[test]
    fn uneven_partition_and_no_passages() {
        let plan = EpochPlan::new(10, 7, 3);
        let sizes: Vec<usize> = (0..3).map(|e| plan.size(e)).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 3 * 3 + 7);
        assert!(sizes.iter().all(|&s| s == 5 || s == 6), "{sizes:?}");
        let none = EpochPlan::new(10, 0, 3);
        assert_eq!(none.members(1, 2), (0..10).collect::<Vec<_>>());
    }
}
