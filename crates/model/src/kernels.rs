//! Shared plumbing of the hand-written CPU kernels (`llama::train_ops`, `llama::frozen_matmul`
//! and the fused ops of the training crate): f32 slices out of candle storage, and row-major
//! GEMM calls on the `gemm` crate (the kernel candle's own matmul uses) without copies.
use candle_core::{CpuStorage, Layout, Result, Storage, Tensor, backend::BackendStorage, bail};

pub fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        bail!("{what}: f32 tensor expected, got {:?}", s.dtype())
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("{what}: tensor must be contiguous"),
    }
}

/// Runs `f` on the contiguous f32 data of `t` (a copy is made only if `t` is strided).
pub fn with_data<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        bail!("{what}: CPU tensor expected")
    };
    f(slice(cpu, layout, what)?)
}

pub fn from_vec(v: Vec<f32>, dims: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(v, dims, &candle_core::Device::Cpu)
}

pub fn last_dim(l: &Layout) -> usize {
    l.dims().last().copied().unwrap_or(1)
}

/// `dst [m, n] = lhs [m, k] · rhs`, all row-major; `rhs_t` reads `rhs` as `[n, k]` transposed.
pub fn gemm_rowmajor(
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    m: usize,
    n: usize,
    k: usize,
    rhs_t: bool,
) {
    debug_assert!(dst.len() == m * n && lhs.len() == m * k && rhs.len() == k * n);
    let (rhs_cs, rhs_rs) = if rhs_t {
        (k as isize, 1)
    } else {
        (1, n as isize)
    };
    let threads = rayon::current_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the slices hold exactly the m·n, m·k and k·n elements the strides address.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}
