//! Examples → padded batches, in an order fixed by (seed, epoch).
//!
//! Length bucketing: each epoch shuffles the examples, sorts them by length inside windows of
//! `BUCKET_WINDOW` batches (so a batch holds similar lengths and little padding), then shuffles
//! the batches. Padding goes on the right; with a causal mask, pad tokens after the real ones
//! never influence them, and they carry no labels, so no attention mask is needed.
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;

use crate::{
    data::Example,
    seeds::{PURPOSE_ORDER, PURPOSE_SPLIT, derived_rng},
};

const BUCKET_WINDOW: usize = 16;

/// One micro-batch as tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[b, s]` u32, right-padded.
    pub input_ids: Tensor,
    /// Flat indices into `b*s` of the positions whose next token is labelled.
    pub positions: Tensor,
    /// The labelled next tokens, one per position (u32).
    pub targets: Tensor,
    /// Number of labelled tokens (the loss is summed over them).
    pub label_tokens: usize,
    /// Non-pad tokens fed to the model (for tokens/s).
    pub input_tokens: usize,
}

/// Batches of example indices for one epoch over `members` (indices into `lengths`).
pub fn epoch_batches(lengths: &[usize], mut order: Vec<usize>, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut rng = derived_rng(seed, PURPOSE_ORDER, epoch as u64);
    order.shuffle(&mut rng);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for window in order.chunks_mut(batch_size * BUCKET_WINDOW) {
        // Stable sort: ties keep the shuffled order, so the result is deterministic.
        window.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(&mut rng);
    batches
}

/// Splits off a seeded `fraction` of examples for evaluation (at least one when > 0).
pub fn split_eval(examples: Vec<Example>, fraction: f64, seed: u64) -> (Vec<Example>, Vec<Example>) {
    if fraction <= 0.0 || examples.len() < 2 {
        return (examples, Vec::new());
    }
    let n_eval = ((examples.len() as f64 * fraction).round() as usize).clamp(1, examples.len() - 1);
    let mut idx: Vec<usize> = (0..examples.len()).collect();
    idx.shuffle(&mut derived_rng(seed, PURPOSE_SPLIT, 0));
    let mut is_eval = vec![false; examples.len()];
    for &i in &idx[..n_eval] {
        is_eval[i] = true;
    }
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    for (ex, e) in examples.into_iter().zip(is_eval) {
        if e { eval.push(ex) } else { train.push(ex) }
    }
    (train, eval)
}

/// Pads `examples` into one batch.
pub fn make_batch(examples: &[&Example], pad_id: u32) -> candle_core::Result<Batch> {
    let s = examples.iter().map(|e| e.ids.len()).max().unwrap_or(1).max(2);
    let b = examples.len();
    let mut ids = vec![pad_id; b * s];
    let (mut positions, mut targets) = (Vec::new(), Vec::new());
    for (row, ex) in examples.iter().enumerate() {
        ids[row * s..row * s + ex.ids.len()].copy_from_slice(&ex.ids);
        for j in 1..ex.ids.len() {
            if ex.labels[j] {
                positions.push((row * s + j - 1) as u32);
                targets.push(ex.ids[j]);
            }
        }
    }
    let n = targets.len();
    Ok(Batch {
        input_ids: Tensor::from_vec(ids, (b, s), &Device::Cpu)?,
        positions: Tensor::from_vec(positions, n, &Device::Cpu)?,
        targets: Tensor::from_vec(targets, n, &Device::Cpu)?,
        label_tokens: n,
        input_tokens: examples.iter().map(|e| e.ids.len()).sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(ids: Vec<u32>, labels: Vec<bool>) -> Example {
        Example { ids, labels, line: 1 }
    }

    #[test]
    fn batch_labels_are_shifted_next_tokens() {
        let a = ex(vec![5, 6, 7, 8], vec![false, false, true, true]);
        let b = ex(vec![9, 10], vec![false, true]);
        let batch = make_batch(&[&a, &b], 0).unwrap();
        assert_eq!(batch.input_ids.to_vec2::<u32>().unwrap(), vec![vec![5, 6, 7, 8], vec![9, 10, 0, 0]]);
        assert_eq!(batch.positions.to_vec1::<u32>().unwrap(), vec![1, 2, 4]);
        assert_eq!(batch.targets.to_vec1::<u32>().unwrap(), vec![7, 8, 10]);
        assert_eq!(batch.label_tokens, 3);
    }

    #[test]
    fn epoch_order_is_seeded_and_covers_everything() {
        let lens: Vec<usize> = (0..50).map(|i| (i * 7) % 13 + 1).collect();
        let all_idx: Vec<usize> = (0..50).collect();
        let a = epoch_batches(&lens, all_idx.clone(), 4, 42, 0);
        assert_eq!(a, epoch_batches(&lens, all_idx.clone(), 4, 42, 0));
        assert_ne!(a, epoch_batches(&lens, all_idx, 4, 42, 1));
        let mut all: Vec<usize> = a.concat();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn eval_split_is_seeded_and_disjoint() {
        let exs: Vec<Example> = (0..10).map(|i| ex(vec![i, i], vec![false, true])).collect();
        let (t, e) = split_eval(exs.clone(), 0.2, 7);
        assert_eq!((t.len(), e.len()), (8, 2));
        assert_eq!(split_eval(exs, 0.2, 7).1, e);
    }
}
