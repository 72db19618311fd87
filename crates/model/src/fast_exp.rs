//! A vectorised `exp` for the training kernels' softmaxes (attention, the head's log-sum-exp)
//! and SwiGLU's sigmoid: 16 lanes with AVX-512, 8 with AVX2 + FMA, picked at run time, and a
//! portable path that computes the same numbers.
//!
//! `f32::exp` is a libm call per element that LLVM cannot vectorise; at SmolLM2 shapes a LoRA
//! step takes ~35M of them (the causal softmaxes, forward and recomputed in backward, SwiGLU's
//! sigmoid both ways, and `rows × 49152` logits in the head), ~4% of a step's CPU time.
//!
//! Method (Cephes' `expf`): `n = round(x·log2 e)`, `r = x − n·ln 2` in two FMA steps (the high
//! part of ln 2 has 11 significant bits, so `n·C1` is exact), `exp(r) ≈ 1 + r + r²·P(r)` with
//! Cephes' degree-5 minimax `P` on `|r| ≤ ln2/2`, then `· 2^n` applied as two power-of-two
//! factors `2^⌊n/2⌋·2^(n−⌊n/2⌋)`, each a normal float, so results in the subnormal range round
//! once, like libm's, and overflow gives `inf`. Inputs are clamped to `[-104, 88.9]` first (exp
//! is 0 below and `inf` above in f32); NaN passes through. Measured against an f64 reference
//! over every f32 in `[-104, 89]` step 1/4096 (test `within_two_ulp_of_f64_exp`): at most 1 ulp.
//!
//! Every path runs the same operations in the same order with fused multiply-adds (the portable
//! one with `f32::mul_add`, exactly rounded too), so AVX-512, AVX2 and portable results are bit
//! identical, and so are the sums `exp_shifted_sum` returns: they accumulate in 16 fixed lanes
//! (element `i` in lane `i % 16`) added in one fixed tree, whatever the vector width. A run's
//! loss sequence does not depend on which of the three paths its CPU takes.
#[cfg(target_arch = "x86_64")]
mod x86;

/// Below this `exp` rounds to 0 in f32 (`exp(-103.98)` is half the smallest subnormal).
const LO: f32 = -104.0;
/// Above this `exp` overflows f32 (`ln(f32::MAX)` = 88.7228).
const HI: f32 = 88.9;
const LOG2E: f32 = std::f32::consts::LOG2_E;
// Constants as Cephes prints them (more digits than f32 holds; the compiler rounds them once).
/// `ln 2 ≈ C1 + C2` with `C1` exact in 11 bits (Cephes' split).
#[allow(clippy::excessive_precision)]
const C1: f32 = 0.693359375;
#[allow(clippy::excessive_precision)]
const C2: f32 = -2.12194440e-4;
/// Cephes `expf` polynomial, highest degree first.
#[allow(clippy::excessive_precision)]
const P: [f32; 6] = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
/// Lanes of the fixed summation order (`exp_shifted_sum`).
const LANES: usize = 16;

/// Which implementation runs on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpKernel {
    Avx512,
    Avx2,
    Portable,
    /// `f32::exp` per element: what the kernels called before; for speed probes (`force`).
    Libm,
}

/// A kernel forced on every thread (`force`), as `ExpKernel as u8 + 1`; 0 for none.
static FORCED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Makes `exp_in_place` and `exp_shifted_sum` use `kernel` (`None`: the detected one) in the whole
/// process: for A/B speed probes, not for training runs. A kernel this CPU lacks is ignored.
pub fn force(kernel: Option<ExpKernel>) {
    let ok = kernel.filter(|&k| available(k));
    FORCED.store(ok.map_or(0, |k| k as u8 + 1), std::sync::atomic::Ordering::Relaxed);
}

/// Whether this CPU can run `kernel`.
pub fn available(kernel: ExpKernel) -> bool {
    match kernel {
        ExpKernel::Avx512 => detected() == ExpKernel::Avx512,
        ExpKernel::Avx2 => avx2(),
        ExpKernel::Portable | ExpKernel::Libm => true,
    }
}

fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The kernel the plain entry points use: the forced one, else the detected one.
fn current() -> ExpKernel {
    match FORCED.load(std::sync::atomic::Ordering::Relaxed) {
        0 => detected(),
        1 => ExpKernel::Avx512,
        2 => ExpKernel::Avx2,
        3 => ExpKernel::Portable,
        _ => ExpKernel::Libm,
    }
}

/// The fastest kernel this CPU supports (detected once).
pub fn detected() -> ExpKernel {
    static KERNEL: std::sync::OnceLock<ExpKernel> = std::sync::OnceLock::new();
    *KERNEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return ExpKernel::Avx512;
            }
        }
        if avx2() {
            return ExpKernel::Avx2;
        }
        ExpKernel::Portable
    })
}

/// `exp(x)`, the portable path's arithmetic (bit-identical to the vector lanes).
// Always inlined: inside the AVX2 tail loop `mul_add` must become the FMA instruction, not a
// call to libm's `fmaf`.
#[allow(clippy::inline_always)]
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let x = x.clamp(LO, HI);
    let n = (x * LOG2E).round_ties_even();
    let r = (-n).mul_add(C1, x);
    let r = (-n).mul_add(C2, r);
    let z = r * r;
    let mut p = P[0];
    for c in &P[1..] {
        p = p.mul_add(r, *c);
    }
    let y = p.mul_add(z, r) + 1.0;
    let ni = n as i32;
    let n1 = ni >> 1;
    y * pow2(n1) * pow2(ni - n1)
}

/// `2^e` for `e` in `[-126, 127]`.
#[allow(clippy::inline_always)] // part of `exp`, see there
#[inline(always)]
fn pow2(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

fn usable(kernel: ExpKernel) -> ExpKernel {
    if available(kernel) { kernel } else { ExpKernel::Portable }
}

/// `v[i] = exp(v[i])` with `kernel` (the portable one if this CPU lacks it).
pub fn exp_in_place_with(kernel: ExpKernel, v: &mut [f32]) {
    match usable(kernel) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` checked that this CPU has AVX512F.
        ExpKernel::Avx512 => unsafe { x86::exp_in_place_512(v) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` checked that this CPU has AVX2 and FMA.
        ExpKernel::Avx2 => unsafe { x86::exp_in_place_256(v) },
        ExpKernel::Libm => v.iter_mut().for_each(|x| *x = x.exp()),
        _ => v.iter_mut().for_each(|x| *x = exp(*x)),
    }
}

/// `v[i] = exp(v[i])`.
pub fn exp_in_place(v: &mut [f32]) {
    exp_in_place_with(current(), v);
}

/// `v[i] = exp(v[i] − shift)`, returning `Σ v[i]` summed in the fixed 16-lane order.
pub fn exp_shifted_sum_with(kernel: ExpKernel, v: &mut [f32], shift: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    match usable(kernel) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` checked that this CPU has AVX512F.
        ExpKernel::Avx512 => unsafe { x86::exp_shifted_sum_512(v, shift, &mut lanes) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `usable` checked that this CPU has AVX2 and FMA.
        ExpKernel::Avx2 => unsafe { x86::exp_shifted_sum_256(v, shift, &mut lanes) },
        ExpKernel::Libm => {
            for (i, x) in v.iter_mut().enumerate() {
                *x = (*x - shift).exp();
                lanes[i % LANES] += *x;
            }
        }
        _ => portable_shifted_sum(v, shift, &mut lanes),
    }
    reduce(lanes)
}

/// `v[i] = exp(v[i] − shift)`, returning their sum (see `exp_shifted_sum_with`).
pub fn exp_shifted_sum(v: &mut [f32], shift: f32) -> f32 {
    exp_shifted_sum_with(current(), v, shift)
}

fn portable_shifted_sum(v: &mut [f32], shift: f32, lanes: &mut [f32; LANES]) {
    for (i, x) in v.iter_mut().enumerate() {
        *x = exp(*x - shift);
        lanes[i % LANES] += *x;
    }
}

/// The lanes added pairwise, halves first: the one order every path uses.
fn reduce(mut l: [f32; LANES]) -> f32 {
    let mut h = LANES / 2;
    while h > 0 {
        for i in 0..h {
            l[i] += l[i + h];
        }
        h /= 2;
    }
    l[0]
}

#[cfg(test)]
mod tests;
