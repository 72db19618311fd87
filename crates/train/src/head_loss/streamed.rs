//! The head loss of a frozen head (LoRA) without the logits: each chunk of rows streams the
//! vocabulary in blocks with an online log-sum-exp, and accumulates the input gradient as it
//! goes (`dh = Σ_v softmax_v · W_v − W_target`, rescaled whenever a row's running maximum rises).
//!
//! Why (SmolLM2, 49,152 x 576 head, 2-core Xeon): the materialised path's logits GEMM has the
//! `gemm` crate pack the whole head weight (113 MB read, 113 MB written) once per 48-row chunk,
//! then the packed copy is read again; that packing was ~7% of a LoRA step's CPU time. Here the
//! logits of a block are computed transposed (`[block, rows]`, rows as the vector dimension), a
//! layout the crate multiplies without packing the weight, and the gradient GEMM reads the same
//! weight block again while it is still in L2. So the weight is read from memory once per chunk,
//! and no `[rows, vocab]` buffer is allocated.
//!
//! Blocks are fixed by the vocabulary size and sums run in block order, so results are
//! bit-identical run to run (not to the materialised path: the summation order differs).
use tinyforge_model::{
    fast_exp,
    kernels::{View, gemm_view},
};

/// Vocabulary rows per block: a 512 x 576 f32 weight block is 1.2 MB, inside L2 between the
/// logits GEMM and the gradient GEMM that reads it again.
const BLOCK: usize = 512;

/// Summed NLL of the rows `hc [m, h]` (`m = targets.len()`) under the logits `hc · wᵀ` (`w` is
/// `[vocab, h]`); with `dh` (`[m, h]`), the gradient of that sum with respect to `hc`.
pub(super) fn chunk_nll(hc: &[f32], w: &[f32], h: usize, targets: &[u32], mut dh: Option<&mut [f32]>) -> f64 {
    let m = targets.len();
    let vocab = w.len() / h;
    debug_assert_eq!(hc.len(), m * h);
    let mut max = vec![f32::NEG_INFINITY; m];
    let mut new_max = vec![0f32; m];
    let mut sum = vec![0f32; m];
    let mut target_logit = vec![0f32; m];
    let mut block = vec![0f32; BLOCK.min(vocab) * m];
    if let Some(d) = dh.as_deref_mut() {
        d.fill(0.0);
    }
    for v0 in (0..vocab).step_by(BLOCK) {
        let vb = BLOCK.min(vocab - v0);
        let wb = &w[v0 * h..(v0 + vb) * h];
        let lb = &mut block[..vb * m];
        // lb [vb, m] = W_block · hcᵀ.
        gemm_view(lb, m, vb, m, h, View::rows(wb, h), View::rows(hc, h).t(), 1.0, false, false);
        for (r, &t) in targets.iter().enumerate() {
            if let Some(j) = (t as usize).checked_sub(v0).filter(|&j| j < vb) {
                target_logit[r] = lb[j * m + r];
            }
        }
        new_max.copy_from_slice(&max);
        for row in lb.chunks_exact(m) {
            for (n, &x) in new_max.iter_mut().zip(row) {
                *n = n.max(x);
            }
        }
        for (r, (&old, &new)) in max.iter().zip(&new_max).enumerate() {
            if new > old {
                // The first block (max −∞) has nothing to rescale yet.
                let s = if old.is_finite() { fast_exp::exp(old - new) } else { 0.0 };
                sum[r] *= s;
                if let Some(d) = dh.as_deref_mut() {
                    d[r * h..(r + 1) * h].iter_mut().for_each(|x| *x *= s);
                }
            }
        }
        for row in lb.chunks_exact_mut(m) {
            for (x, &n) in row.iter_mut().zip(&new_max) {
                *x -= n;
            }
        }
        fast_exp::exp_in_place(lb);
        for row in lb.chunks_exact(m) {
            for (s, &x) in sum.iter_mut().zip(row) {
                *s += x;
            }
        }
        if let Some(d) = dh.as_deref_mut() {
            // dh [m, h] += lbᵀ · W_block (unnormalised softmax weights).
            gemm_view(d, h, m, h, vb, View::rows(lb, m).t(), View::rows(wb, h), 1.0, true, false);
        }
        max.copy_from_slice(&new_max);
    }
    let loss = (0..m).map(|r| f64::from(max[r] + sum[r].ln() - target_logit[r])).sum();
    if let Some(d) = dh {
        for (r, &t) in targets.iter().enumerate() {
            let inv = 1.0 / sum[r];
            let wt = &w[t as usize * h..(t as usize + 1) * h];
            for (x, &wv) in d[r * h..(r + 1) * h].iter_mut().zip(wt) {
                *x = *x * inv - wv;
            }
        }
    }
    loss
}
