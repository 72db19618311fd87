//! The output head and the cross-entropy as one op: `Σ_rows −log softmax(h·Wᵀ)[target]`.
//!
//! Built from candle primitives, the head of a 49k-token vocabulary materialises `[rows, vocab]`
//! logits (100 MB for 512 labelled positions), then log-softmax, gather and their backward
//! passes each allocate, zero-fill and add tensors of that size: on a 2-core CPU that memory
//! traffic (and the page faults of fresh allocations) cost as much as the head's GEMMs. Here the
//! rows go through in chunks: logits of a chunk, its log-sum-exp and loss, and — when training —
//! `dlogits = softmax − onehot(target)` and `dh = dlogits·W` right away, while the chunk is hot
//! in cache. Backward then only scales the stored `dh` (and `dW = Σ dlogitsᵀ·h` when the head is
//! trained, full fine-tuning) by the upstream gradient.
//!
//! Chunks are fixed by the row count, not by the thread count, and partial sums are added in
//! chunk order, so the loss and gradients are bit-identical run to run.
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;
use tinyforge_model::{
    fast_exp,
    kernels::{View, from_vec, gemm_view, slice, with_data},
};

mod streamed;

/// Rows per chunk: its logits (`CHUNK_ROWS × vocab` f32, 8 MB for 49k tokens) stay within
/// reach of the cache and W is streamed once per chunk. In the streamed path, 48 rows is the
/// most the `gemm` crate multiplies by a weight block without packing it (8 x its 6-column
/// micro-kernel width on AVX-512).
const CHUNK_ROWS: usize = 48;

/// A chunk size other than `CHUNK_ROWS` (0: none), for A/B speed probes only: the gemm crate
/// packs the whole head weight (28M floats for SmolLM2) once per GEMM call, twice per chunk.
static PROBE_CHUNK_ROWS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[doc(hidden)]
pub fn set_probe_chunk_rows(rows: usize) {
    PROBE_CHUNK_ROWS.store(rows, std::sync::atomic::Ordering::Relaxed);
}

/// Forces the materialised path for a frozen head too, for A/B speed probes only.
static PROBE_MATERIALISE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[doc(hidden)]
pub fn set_probe_materialise(on: bool) {
    PROBE_MATERIALISE.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn chunk_rows() -> usize {
    match PROBE_CHUNK_ROWS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => CHUNK_ROWS,
        r => r,
    }
}

/// Summed negative log-likelihood of `targets` under the logits `hidden [n, h] · wᵀ` (`w` is
/// `[vocab, h]`), a scalar. With `grad` the gradients are prepared during the forward pass;
/// without it (evaluation) only the loss is computed.
pub fn head_nll_sum(hidden: &Tensor, w: &Tensor, targets: &[u32], grad: bool) -> Result<Tensor> {
    let (n, h) = hidden.dims2()?;
    let (vocab, wh) = w.dims2()?;
    if h != wh || targets.len() != n {
        bail!("head loss: hidden [{n}, {h}], head [{vocab}, {wh}], {} targets", targets.len())
    }
    if let Some(t) = targets.iter().find(|&&t| t as usize >= vocab) {
        bail!("head loss: target id {t} >= vocab size {vocab}")
    }
    // A head in the graph (full fine-tuning) needs every chunk's dlogits for its own gradient:
    // the materialised path. Chosen by the weight alone, so evaluation and training of one model
    // take the same path and give the same loss.
    let streamed = !w.track_op() && !PROBE_MATERIALISE.load(std::sync::atomic::Ordering::Relaxed);
    let op = HeadNll { targets: targets.to_vec(), grad, weight_grad: grad && w.track_op(), streamed, saved: Mutex::new(None) };
    let (hidden, w) = (hidden.contiguous()?, w.contiguous()?);
    if grad { hidden.apply_op2(&w, op) } else { hidden.apply_op2_no_bwd(&w, &op) }
}

/// Gradients computed during the forward pass, taken by the backward pass.
struct Saved {
    dh: Option<Vec<f32>>,
    dw: Option<Vec<f32>>,
}

struct HeadNll {
    targets: Vec<u32>,
    grad: bool,
    weight_grad: bool,
    /// A frozen head: `streamed::chunk_nll`, without logits.
    streamed: bool,
    saved: Mutex<Option<Saved>>,
}

/// One chunk's summed loss, and (training) its `dlogits` in place of the logits. One `exp` per
/// logit: the shifted exponentials are kept and normalised for the gradient.
fn chunk_loss(logits: &mut [f32], targets: &[u32], vocab: usize, grad: bool) -> f64 {
    let mut loss = 0f64;
    for (row, &t) in logits.chunks_mut(vocab).zip(targets) {
        let target_logit = row[t as usize];
        let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum = fast_exp::exp_shifted_sum(row, m);
        loss += f64::from(m + sum.ln() - target_logit);
        if grad {
            let inv = 1.0 / sum;
            for v in row.iter_mut() {
                *v *= inv;
            }
            row[t as usize] -= 1.0;
        }
    }
    loss
}

impl CustomOp2 for HeadNll {
    fn name(&self) -> &'static str {
        "tf-head-nll"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (hid, w) = (slice(s1, l1, "head loss hidden")?, slice(s2, l2, "head loss weight")?);
        let (n, h) = l1.shape().dims2()?;
        let vocab = w.len() / h;
        let rows = chunk_rows();
        let mut dh = if self.grad { vec![0f32; n * h] } else { Vec::new() };
        // Each chunk's slice of dh (none when only the loss is wanted).
        let dh_parts: Vec<Option<&mut [f32]>> =
            if self.grad { dh.chunks_mut(rows * h).map(Some).collect() } else { (0..n.div_ceil(rows)).map(|_| None).collect() };
        let wt = View::rows(w, h).t(); // [h, vocab]
        let results: Vec<(f64, Option<Vec<f32>>)> = dh_parts
            .into_par_iter()
            .enumerate()
            .map(|(c, dh_part)| {
                let (r0, r1) = (c * rows, ((c + 1) * rows).min(n));
                let m = r1 - r0;
                let hc = &hid[r0 * h..r1 * h];
                if self.streamed {
                    return (streamed::chunk_nll(hc, w, h, &self.targets[r0..r1], dh_part), None);
                }
                let mut logits = vec![0f32; m * vocab];
                gemm_view(&mut logits, vocab, m, vocab, h, View::rows(hc, h), wt, 1.0, false, false);
                let loss = chunk_loss(&mut logits, &self.targets[r0..r1], vocab, self.grad);
                if let Some(dh_part) = dh_part {
                    gemm_view(dh_part, h, m, h, vocab, View::rows(&logits, vocab), View::rows(w, h), 1.0, false, false);
                }
                (loss, self.weight_grad.then_some(logits))
            })
            .collect();
        let loss: f64 = results.iter().map(|r| r.0).sum();
        let dw = self.weight_grad.then(|| {
            // dW [vocab, h] = Σ_chunks dlogitsᵀ · h_chunk, in chunk order.
            let mut dw = vec![0f32; vocab * h];
            for (c, (_, dl)) in results.iter().enumerate() {
                let dl = dl.as_ref().expect("kept for the weight gradient");
                let (r0, r1) = (c * rows, ((c + 1) * rows).min(n));
                gemm_view(&mut dw, h, vocab, h, r1 - r0, View::rows(dl, vocab).t(), View::rows(&hid[r0 * h..r1 * h], h), 1.0, c > 0, true);
            }
            dw
        });
        let dh = self.grad.then_some(dh);
        *self.saved.lock().unwrap() = Some(Saved { dh, dw });
        Ok((CpuStorage::F32(vec![loss as f32]), Shape::from(())))
    }

    fn bwd(&self, hidden: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(saved) = self.saved.lock().unwrap().take() else { bail!("head loss: backward ran twice on one graph") };
        let g = with_data(grad, "head loss upstream grad", |g| Ok(g[0]))?;
        // Exactly 1 (a plain `backward()` of the loss) is by far the common case: skip the pass.
        #[allow(clippy::float_cmp)]
        let scale = |mut v: Vec<f32>| {
            if g != 1.0 {
                for x in &mut v {
                    *x *= g;
                }
            }
            v
        };
        let dh = saved.dh.map(|v| from_vec(scale(v), hidden.dims())).transpose()?;
        let dw = saved.dw.map(|v| from_vec(scale(v), w.dims())).transpose()?;
        Ok((dh, dw))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::trainable::nll_sum;

    fn rand(dims: &[usize], seed: u64) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|i| (((i as u64 * 2_654_435_761 + seed * 97) % 1000) as f32 / 500.0 - 1.0) * 0.7).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Loss and gradients of hidden (and of W when it is a Var) equal log_softmax + gather, for
    /// row counts below, at and above a chunk; the upstream gradient (×3) is applied.
    #[test]
    #[allow(clippy::float_cmp)] // the eval and train forward must agree bit for bit
    fn matches_log_softmax_gather_in_value_and_gradients() {
        for (n, train_w) in [(5, false), (CHUNK_ROWS, true), (2 * CHUNK_ROWS + 7, true), (CHUNK_ROWS + 1, false)] {
            let (h, vocab) = (16, 37);
            let hid = Var::from_tensor(&rand(&[n, h], 1)).unwrap();
            let w = rand(&[vocab, h], 2);
            let wv = Var::from_tensor(&w).unwrap();
            let w_used = if train_w { wv.as_tensor().clone() } else { w.clone() };
            let targets: Vec<u32> = (0..n).map(|i| ((i * 7 + 3) % vocab) as u32).collect();
            let t = Tensor::new(targets.as_slice(), &Device::Cpu).unwrap();

            let raw = head_nll_sum(hid.as_tensor(), &w_used, &targets, true).unwrap();
            let fused = (&raw * 3.0).unwrap();
            let reference = (nll_sum(&hid.as_tensor().matmul(&w_used.t().unwrap()).unwrap(), &t).unwrap() * 3.0).unwrap();
            let (f, r) = (fused.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
            assert!((f - r).abs() < 1e-4 * r.abs(), "n={n}: loss {f} vs {r}");
            let (gf, gr) = (fused.backward().unwrap(), reference.backward().unwrap());
            let dh = max_diff(gf.get(hid.as_tensor()).unwrap(), gr.get(hid.as_tensor()).unwrap());
            assert!(dh < 1e-5, "n={n}: hidden grad off by {dh}");
            if train_w {
                let dw = max_diff(gf.get(wv.as_tensor()).unwrap(), gr.get(wv.as_tensor()).unwrap());
                assert!(dw < 1e-5, "n={n}: head grad off by {dw}");
            } else {
                assert!(gf.get(wv.as_tensor()).is_none());
            }
            let eval = head_nll_sum(hid.as_tensor(), &w_used, &targets, false).unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(eval, raw.to_scalar::<f32>().unwrap(), "eval and train forward give the same loss");
        }
    }

    /// The streamed path (frozen head) over several vocabulary blocks, the last one partial, with
    /// the row maxima rising in later blocks (so the running sums and gradients are rescaled),
    /// against log_softmax + gather; and bit-identical when run again.
    #[test]
    #[allow(clippy::float_cmp)]
    fn streamed_blocks_match_log_softmax_gather() {
        let (n, h, vocab) = (CHUNK_ROWS + 5, 8, 1300);
        let hid = Var::from_tensor(&rand(&[n, h], 3)).unwrap();
        // Later vocabulary rows have larger weights, so each block raises the maxima.
        let ramp = Tensor::arange(0f32, vocab as f32, &Device::Cpu).unwrap().affine(4.0 / vocab as f64, 0.5).unwrap();
        let w = rand(&[vocab, h], 4).broadcast_mul(&ramp.unsqueeze(1).unwrap()).unwrap();
        let targets: Vec<u32> = (0..n).map(|i| ((i * 211 + 5) % vocab) as u32).collect();
        let t = Tensor::new(targets.as_slice(), &Device::Cpu).unwrap();
        let fused = head_nll_sum(hid.as_tensor(), &w, &targets, true).unwrap();
        let reference = nll_sum(&hid.as_tensor().matmul(&w.t().unwrap()).unwrap(), &t).unwrap();
        let (f, r) = (fused.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
        assert!((f - r).abs() < 1e-4 * r.abs(), "loss {f} vs {r}");
        let (gf, gr) = (fused.backward().unwrap(), reference.backward().unwrap());
        let dh = max_diff(gf.get(hid.as_tensor()).unwrap(), gr.get(hid.as_tensor()).unwrap());
        assert!(dh < 1e-5, "hidden grad off by {dh}");
        let again = head_nll_sum(hid.as_tensor(), &w, &targets, true).unwrap();
        assert_eq!(again.to_scalar::<f32>().unwrap(), f, "bit-identical run to run");
    }

    #[test]
    fn rejects_targets_outside_the_vocabulary() {
        let err = head_nll_sum(&rand(&[2, 4], 1), &rand(&[5, 4], 2), &[1, 5], false).unwrap_err();
        assert!(err.to_string().contains("target id 5"), "{err}");
    }
}
