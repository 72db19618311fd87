//! Shared plumbing of the hand-written CPU kernels (`llama::train_ops`, `llama::frozen_matmul`
//! and the fused ops of the training crate): f32 slices out of candle storage, and row-major
//! GEMM calls on the `gemm` crate (the kernel candle's own matmul uses) without copies.
use candle_core::{CpuStorage, Layout, Result, Storage, Tensor, backend::BackendStorage, bail};

pub fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else { bail!("{what}: f32 tensor expected, got {:?}", s.dtype()) };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("{what}: tensor must be contiguous"),
    }
}

/// Runs `f` on the contiguous f32 data of `t` (a copy is made only if `t` is strided).
pub fn with_data<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else { bail!("{what}: CPU tensor expected") };
    f(slice(cpu, layout, what)?)
}

pub fn from_vec(v: Vec<f32>, dims: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(v, dims, &candle_core::Device::Cpu)
}

pub fn last_dim(l: &Layout) -> usize {
    l.dims().last().copied().unwrap_or(1)
}

/// `dst [m, n] = lhs [m, k] · rhs`, all row-major; `rhs_t` reads `rhs` as `[n, k]` transposed.
pub fn gemm_rowmajor(dst: &mut [f32], lhs: &[f32], rhs: &[f32], m: usize, n: usize, k: usize, rhs_t: bool) {
    debug_assert!(dst.len() == m * n && lhs.len() == m * k && rhs.len() == k * n);
    let rhs = if rhs_t { View::rows(rhs, k).t() } else { View::rows(rhs, n) };
    gemm_view(dst, n, m, n, k, View::rows(lhs, k), rhs, 1.0, false, true);
}

thread_local! {
    /// How many concurrent callers share the pool (see `sharing_pool`).
    static SHARERS: std::cell::Cell<usize> = const { std::cell::Cell::new(1) };
}

/// Runs `f` as one of `sharers` computations running side by side on the current rayon pool
/// (the training lanes): GEMMs called inside split over `threads / sharers` threads, serial on
/// two cores. A serial GEMM does about 10% more work per CPU second than one split in two, and
/// the other core is busy with the other lane anyway. Restored afterwards (nesting is LIFO).
pub fn sharing_pool<R>(sharers: usize, f: impl FnOnce() -> R) -> R {
    let previous = SHARERS.with(|s| s.replace(sharers.max(1)));
    let out = f();
    SHARERS.with(|s| s.set(previous));
    out
}

/// Threads a GEMM issued on this thread may use.
pub(crate) fn gemm_threads() -> usize {
    (rayon::current_num_threads() / SHARERS.with(std::cell::Cell::get)).max(1)
}

/// A strided matrix over a slice: element `(i, j)` is `data[i·rs + j·cs]`. `t()` swaps the
/// strides (the transpose, with no copy).
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `[rows, cols]` matrix stored in `data` with row stride `rs`.
    pub fn rows(data: &'a [f32], rs: usize) -> Self {
        Self { data, rs, cs: 1 }
    }

    pub fn t(self) -> Self {
        Self { data: self.data, rs: self.cs, cs: self.rs }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `dst [m, n] (row stride dst_rs) = alpha·lhs [m, k]·rhs [k, n]`, or `+=` when `accumulate`.
/// `parallel` splits the GEMM over the current rayon pool; pass `false` inside tasks that
/// already run in parallel (one GEMM per task is faster than nested splitting on 2 cores).
#[allow(clippy::too_many_arguments)]
pub fn gemm_view(
    dst: &mut [f32],
    dst_rs: usize,
    m: usize,
    n: usize,
    k: usize,
    lhs: View,
    rhs: View,
    alpha: f32,
    accumulate: bool,
    parallel: bool,
) {
    assert!(lhs.fits(m, k) && rhs.fits(k, n), "gemm_view: operand views too small for {m}x{k}x{n}");
    assert!(m == 0 || n == 0 || (m - 1) * dst_rs + n <= dst.len(), "gemm_view: destination too small");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: `fits` checked above that every addressed element lies inside its slice, and the
    // destination assert that the `m` rows of stride `dst_rs` fit in `dst`.
    unsafe { gemm_raw(dst.as_mut_ptr(), dst_rs, accumulate, m, n, k, &lhs, &rhs, alpha, parallel) }
}

/// `dst = lhs·rhs·alpha` (`+=` when `read_dst`) through the `gemm` crate: the one call site of
/// it here. `parallel` as in `gemm_view`.
///
/// # Safety
/// Every element `lhs` and `rhs` address for `m x k` and `k x n` lies in their slices, and `dst`
/// points to `m` rows of stride `dst_rs` with `n` writable floats each (initialised when
/// `read_dst`).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    dst: *mut f32,
    dst_rs: usize,
    read_dst: bool,
    m: usize,
    n: usize,
    k: usize,
    lhs: &View,
    rhs: &View,
    alpha: f32,
    parallel: bool,
) {
    let threads = gemm_threads();
    let par = if parallel && threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // The crate computes dst = a·dst + b·lhs·rhs, reading dst only when `read_dst`.
    let dst_factor = if read_dst { 1.0 } else { 0.0 };
    // SAFETY: the caller's contract above.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            read_dst,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            dst_factor,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
}

/// `gemm_new` zero-fills first (the old way), for A/B speed probes only.
static PROBE_ZERO_FILL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[doc(hidden)]
pub fn set_probe_zero_fill(on: bool) {
    PROBE_ZERO_FILL.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// `lhs [m, k] · rhs [k, n]` as a new row-major `[m, n]` vector (see `gemm_view`). The GEMM
/// writes every element without reading the destination, so the vector is not zero-filled
/// first: with the training allocator settings freed buffers are reused, and `vec![0; n]` on
/// them is a `memset` (~3% of a SmolLM2 LoRA step's CPU time across the kernels' outputs).
pub fn gemm_new(m: usize, n: usize, k: usize, lhs: View, rhs: View, parallel: bool) -> Vec<f32> {
    if m == 0 || n == 0 || k == 0 || PROBE_ZERO_FILL.load(std::sync::atomic::Ordering::Relaxed) {
        let mut dst = vec![0f32; m * n];
        gemm_view(&mut dst, n, m, n, k, lhs, rhs, 1.0, false, parallel);
        return dst;
    }
    assert!(lhs.fits(m, k) && rhs.fits(k, n), "gemm_new: operand views too small for {m}x{k}x{n}");
    let mut dst: Vec<f32> = Vec::with_capacity(m * n);
    // SAFETY: `fits` checked that every operand element read lies inside its slice; the
    // destination is `m·n` reserved floats, row stride `n`, and with `read_dst` false the GEMM
    // writes each of them once without reading it (k > 0), so all `m·n` are initialised before
    // `set_len`.
    unsafe {
        gemm_raw(dst.as_mut_ptr(), n, false, m, n, k, &lhs, &rhs, 1.0, parallel);
        dst.set_len(m * n);
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp)] // small integers times 0.5: every product and sum is exact
    fn gemm_view_matches_a_naive_product_with_transposes_and_accumulation() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 2.0).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 - 3.0).collect(); // [n, k]
        let mut dst = vec![1f32; m * n];
        gemm_view(&mut dst, n, m, n, k, View::rows(&a, k), View::rows(&bt, k).t(), 2.0, true, false);
        for i in 0..m {
            for j in 0..n {
                let dot: f32 = (0..k).map(|p| a[i * k + p] * bt[j * k + p]).sum();
                assert_eq!(dst[i * n + j], 1.0 + 2.0 * dot);
            }
        }
    }

    #[test]
    #[allow(clippy::float_cmp)] // small integers: every product and sum is exact
    fn gemm_new_matches_a_naive_product_on_reused_memory() {
        let (m, k, n) = (37, 9, 70);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 - 3.0).collect(); // [n, k]
        // Leave garbage in freed memory the allocator may hand back.
        drop(vec![f32::NAN; m * n]);
        let dst = gemm_new(m, n, k, View::rows(&a, k), View::rows(&bt, k).t(), true);
        assert_eq!(dst.len(), m * n);
        for i in 0..m {
            for j in 0..n {
                let dot: f32 = (0..k).map(|p| a[i * k + p] * bt[j * k + p]).sum();
                assert_eq!(dst[i * n + j], dot, "({i}, {j})");
            }
        }
    }
}
