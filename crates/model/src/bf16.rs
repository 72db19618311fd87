//! bf16 compute for the frozen base projections of LoRA training: PyTorch autocast's numerics
//! (both operands rounded to bf16, round to nearest even, products summed in f32) on
//! AVX512_BF16's `vdpbf16ps`, with the weights packed once per run.
//!
//! Why a hand-written kernel (measured on this project's 2-core Xeon with AVX512_BF16, Rust 1.95):
//! * the `gemm` crate 0.19 has no bf16 type; its `f16` feature (IEEE half, not bf16) widens the
//!   operands to f32 while packing and runs the f32 micro-kernels, so it cannot be faster than
//!   f32 and has other numerics;
//! * the AVX-512 BF16 intrinsics (`_mm512_dpbf16_ps`, `_mm512_cvtneps_pbh`) are stable in Rust
//!   1.95 with `#[target_feature(enable = "avx512bf16")]` and run-time detection;
//! * oneDNN: crates.io's only binding (`onednn-sys` 0.0.1) needs the C++ library installed, which
//!   an npm package's prebuilt addon cannot assume.
//!
//! Numerics, checked against the hardware (3.2M random values and 200k dot products):
//! `vcvtneps2bf16` is round-to-nearest-even with denormal inputs flushed to signed zero
//! (`round_bits`), and `vdpbf16ps` adds the odd product, then the even one, to the f32
//! accumulator, each product exact in f32 (8-bit by 8-bit significands). The reference path
//! (`fallback::tile`) does exactly that, so the fast path and the reference agree bit for bit
//! (except where a product or sum falls below f32's normal range, ~1e-38, which the instruction
//! flushes) and a CPU without AVX512_BF16 (AVX2-only CI) still runs, and tests, the same numbers.
//!
//! Layout: a weight `W [out, in]` is packed twice, for `x·Wᵀ` (reduction over `in`) and for
//! `g·W` (reduction over `out`, the input gradient); each packing is column panels of `NR` = 64
//! outputs, and within a panel one 64 x 2 block per pair of reduction indices, which is four
//! `vdpbf16ps` operands. Two bf16 copies weigh what the f32 weight does.
use candle_core::{Result, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::{gemm_threads, with_data};

#[cfg(target_arch = "x86_64")]
mod avx512;
mod fallback;
#[cfg(test)]
mod tests;

/// Output columns per packed panel: four 16-lane accumulators.
const NR: usize = 64;
/// Rows per register tile: 6 x 4 accumulators + 4 weight operands + 1 broadcast of 32 zmm.
const MR: usize = 6;
/// Reduction pairs per cache block: a 256 x 64 weight block is 32 KiB, inside a 48 KiB L1.
const KC: usize = 128;

/// Which arithmetic the frozen base weights of a training run use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// bf16 where it is faster than f32 (`bf16_preferred`), f32 elsewhere.
    #[default]
    Auto,
    Fp32,
    Bf16,
}

impl Precision {
    /// `Auto` made concrete for this CPU.
    pub fn resolve(self) -> Self {
        match self {
            Self::Auto if bf16_preferred() => Self::Bf16,
            Self::Auto => Self::Fp32,
            p => p,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Auto, Self::Fp32, Self::Bf16].into_iter().find(|p| p.as_str() == s)
    }
}

/// True when this CPU has the bf16 dot-product instructions.
pub fn fast_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether `Auto` picks bf16 on this CPU: AVX512_BF16 on an AMD CPU (Zen 4 and later).
///
/// Having the instruction is not enough. On this project's Intel Xeon (AVX512_BF16 and FP16, no
/// AMX) a register-only probe runs `vdpbf16ps` at 1.3 G/s (85 GFLOP/s) against 5.4 G/s for zmm
/// FMAs (173 GFLOP/s): bf16 has half the f32 arithmetic rate there, and a whole SmolLM2 LoRA step
/// measured 0.75x as fast in bf16 as in f32 (85 vs 114 tok/s, busy machine). On Zen 4 PyTorch's
/// bf16 autocast ran 1.42x its f32 (issue 12), the instruction being full rate there. The vendor
/// check is deterministic, unlike a timing probe, so `auto` resolves the same on every run of a
/// machine and resumed runs keep their precision. Intel CPUs with AMX-BF16 would want AMX tiles,
/// which this kernel does not use.
pub fn bf16_preferred() -> bool {
    fast_available() && is_amd()
}

fn is_amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: CPUID leaf 0 exists on every x86_64 CPU.
        #[allow(unused_unsafe)]
        let r = unsafe { std::arch::x86_64::__cpuid(0) };
        // "AuthenticAMD" as EBX, EDX, ECX.
        (r.ebx, r.edx, r.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

thread_local! {
    /// Tests run the reference path on CPUs that have the fast one too.
    static FORCE_REFERENCE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the reference (portable) kernel on this thread, whatever the CPU has.
pub fn with_reference_kernel<R>(f: impl FnOnce() -> R) -> R {
    let previous = FORCE_REFERENCE.with(|c| c.replace(true));
    let out = f();
    FORCE_REFERENCE.with(|c| c.set(previous));
    out
}

fn use_fast() -> bool {
    !FORCE_REFERENCE.with(std::cell::Cell::get) && fast_available()
}

/// `v` rounded to bf16 (nearest even; denormals flushed to signed zero; NaN stays NaN).
pub fn round_bits(v: f32) -> u16 {
    let b = v.to_bits();
    if v.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    if b & 0x7f80_0000 == 0 {
        return ((b >> 16) & 0x8000) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

pub fn widen(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// A `[kd, nd]` right-hand operand (`kd` reduced, `nd` output columns) in bf16 panels.
#[derive(Debug)]
struct Panels {
    kd: usize,
    nd: usize,
    data: Vec<u16>,
}

impl Panels {
    /// Packs `b(r, c) = src[r·rs + c·cs]`, zero-padded to whole pairs and panels.
    fn pack(src: &[f32], rs: usize, cs: usize, kd: usize, nd: usize) -> Self {
        let pairs = kd.div_ceil(2);
        let mut data = vec![0u16; nd.div_ceil(NR) * pairs * NR * 2];
        data.par_chunks_mut(pairs * NR * 2).enumerate().for_each(|(p, panel)| {
            for (q, block) in panel.chunks_mut(NR * 2).enumerate() {
                for j in 0..NR.min(nd - p * NR) {
                    for e in 0..2 {
                        let r = 2 * q + e;
                        if r < kd {
                            block[2 * j + e] = round_bits(src[r * rs + (p * NR + j) * cs]);
                        }
                    }
                }
            }
        });
        Self { kd, nd, data }
    }

    fn pairs(&self) -> usize {
        self.kd.div_ceil(2)
    }

    /// `dst [m, nd] (+)= a [m, kd]·b`, `a` rounded to bf16 first, rows split over the threads a
    /// GEMM may use here (`kernels::gemm_threads`).
    fn matmul(&self, a: &[f32], dst: &mut [f32], accumulate: bool) {
        let (kd, nd) = (self.kd, self.nd);
        let m = a.len() / kd.max(1);
        assert!(
            a.len() == m * kd && dst.len() == m * nd,
            "bf16 matmul: {} inputs, {} outputs for [{m}, {kd}]x[{kd}, {nd}]",
            a.len(),
            dst.len()
        );
        if m == 0 || nd == 0 {
            return;
        }
        let fast = use_fast();
        let threads = gemm_threads();
        let chunk = m.div_ceil(threads).next_multiple_of(MR);
        let run = |(rows, out): (&[f32], &mut [f32])| self.matmul_rows(rows, out, accumulate, fast);
        if threads > 1 && m > chunk {
            a.par_chunks(chunk * kd).zip(dst.par_chunks_mut(chunk * nd)).for_each(run);
        } else {
            run((a, dst));
        }
    }

    fn matmul_rows(&self, a: &[f32], dst: &mut [f32], accumulate: bool, fast: bool) {
        let (kd, nd, pairs) = (self.kd, self.nd, self.pairs());
        let (m, lda) = (a.len() / kd, pairs * 2);
        let mut ab = vec![0u16; m * lda];
        for (src, row) in a.chunks(kd).zip(ab.chunks_mut(lda)) {
            convert_row(src, row, fast);
        }
        for k0 in (0..pairs).step_by(KC) {
            let block = KC.min(pairs - k0);
            let acc = accumulate || k0 > 0;
            for p in 0..nd.div_ceil(NR) {
                let b = &self.data[(p * pairs + k0) * NR * 2..][..block * NR * 2];
                let cols = NR.min(nd - p * NR);
                for i0 in (0..m).step_by(MR) {
                    let rows = MR.min(m - i0);
                    let a_tile = &ab[i0 * lda + 2 * k0..];
                    let d = &mut dst[i0 * nd + p * NR..];
                    if fast {
                        fast_tile(rows, a_tile, lda, b, block, d, nd, cols, acc);
                    } else {
                        fallback::tile(rows, a_tile, lda, b, block, d, nd, cols, acc);
                    }
                }
            }
        }
    }

    /// The packed operand back as f32 `[kd, nd]` (what the kernel multiplies by; for tests).
    #[cfg(test)]
    fn unpack(&self) -> Vec<f32> {
        let pairs = self.pairs();
        let mut out = vec![0f32; self.kd * self.nd];
        for r in 0..self.kd {
            for c in 0..self.nd {
                let (p, j) = (c / NR, c % NR);
                out[r * self.nd + c] = widen(self.data[((p * pairs + r / 2) * NR + j) * 2 + r % 2]);
            }
        }
        out
    }
}

fn convert_row(src: &[f32], dst: &mut [u16], fast: bool) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is only true when `fast_available()` saw AVX512F and AVX512_BF16;
        // `dst` (a padded row) is at least as long as `src`.
        unsafe { avx512::convert_row(src, dst) };
        return;
    }
    let _ = fast;
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = round_bits(s);
    }
}

#[allow(clippy::too_many_arguments)]
fn fast_tile(rows: usize, a: &[u16], lda: usize, b: &[u16], pairs: usize, dst: &mut [f32], ldd: usize, cols: usize, acc: bool) {
    assert!(a.len() >= (rows - 1) * lda + 2 * pairs && b.len() >= pairs * NR * 2, "bf16 tile: operands too short");
    assert!(dst.len() >= (rows - 1) * ldd + cols, "bf16 tile: destination too short");
    #[cfg(target_arch = "x86_64")]
    {
        let (a, b, d) = (a.as_ptr(), b.as_ptr(), dst.as_mut_ptr());
        // SAFETY: only called when `use_fast()` saw the CPU features; the asserts above bound
        // every address the tile reads or writes.
        unsafe {
            match rows {
                1 => avx512::tile::<1>(a, lda, b, pairs, d, ldd, cols, acc),
                2 => avx512::tile::<2>(a, lda, b, pairs, d, ldd, cols, acc),
                3 => avx512::tile::<3>(a, lda, b, pairs, d, ldd, cols, acc),
                4 => avx512::tile::<4>(a, lda, b, pairs, d, ldd, cols, acc),
                5 => avx512::tile::<5>(a, lda, b, pairs, d, ldd, cols, acc),
                _ => avx512::tile::<MR>(a, lda, b, pairs, d, ldd, cols, acc),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    fallback::tile(rows, a, lda, b, pairs, dst, ldd, cols, acc);
}

/// A frozen weight `W [out, in]` packed for both directions of a linear layer.
#[derive(Debug)]
pub struct PackedWeight {
    out: usize,
    inp: usize,
    /// For `x·Wᵀ`: reduction over `in`, columns `out`.
    fwd: Panels,
    /// For `g·W`: reduction over `out`, columns `in`.
    bwd: Panels,
}

impl PackedWeight {
    pub fn new(w: &[f32], out: usize, inp: usize) -> Self {
        assert_eq!(w.len(), out * inp, "packed weight: {} values for [{out}, {inp}]", w.len());
        Self { out, inp, fwd: Panels::pack(w, 1, inp, inp, out), bwd: Panels::pack(w, inp, 1, out, inp) }
    }

    pub fn from_tensor(w: &Tensor) -> Result<Self> {
        let (out, inp) = w.dims2()?;
        with_data(w, "bf16 weight", |data| Ok(Self::new(data, out, inp)))
    }

    /// `(out, in)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.out, self.inp)
    }

    /// `y [rows, out] (+)= bf16(x [rows, in])·bf16(W)ᵀ`.
    pub fn forward(&self, x: &[f32], y: &mut [f32], accumulate: bool) {
        self.fwd.matmul(x, y, accumulate);
    }

    /// `dx [rows, in] (+)= bf16(g [rows, out])·bf16(W)`.
    pub fn backward(&self, g: &[f32], dx: &mut [f32], accumulate: bool) {
        self.bwd.matmul(g, dx, accumulate);
    }
}
