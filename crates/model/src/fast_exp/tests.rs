use super::*;

/// The kernels this CPU can run, portable first.
fn kernels() -> Vec<ExpKernel> {
    let mut ks = vec![ExpKernel::Portable];
    assert!(available(detected()));
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            ks.push(ExpKernel::Avx2);
        }
        if std::is_x86_feature_detected!("avx512f") {
            ks.push(ExpKernel::Avx512);
        }
    }
    ks
}

/// Distance in units in the last place between two non-negative floats (subnormals included:
/// their bit patterns are consecutive too).
fn ulps(a: f32, b: f32) -> u32 {
    a.to_bits().abs_diff(b.to_bits())
}

fn sweep() -> Vec<f32> {
    let mut xs: Vec<f32> = (0..=193 * 4096).map(|i| -104.0 + i as f32 / 4096.0).collect();
    // Tiny magnitudes, where exp is 1 ± an ulp or two.
    xs.extend((0..2000).flat_map(|i| [i as f32 * 1e-9, -(i as f32) * 1e-9]));
    xs
}

#[test]
fn within_two_ulp_of_f64_exp_and_of_std() {
    let xs = sweep();
    let (mut worst_ref, mut worst_std) = ((0, 0.0), (0, 0.0));
    for &x in &xs {
        let got = exp(x);
        let reference = f64::from(x).exp() as f32;
        let (d_ref, d_std) = (ulps(got, reference), ulps(got, x.exp()));
        if d_ref > worst_ref.0 {
            worst_ref = (d_ref, x);
        }
        if d_std > worst_std.0 {
            worst_std = (d_std, x);
        }
    }
    eprintln!("worst: {} ulp from f64 at {}, {} ulp from f32::exp at {}", worst_ref.0, worst_ref.1, worst_std.0, worst_std.1);
    assert!(worst_ref.0 <= 2, "{} ulp from the f64 reference at x = {}", worst_ref.0, worst_ref.1);
    assert!(worst_std.0 <= 2, "{} ulp from f32::exp at x = {}", worst_std.0, worst_std.1);
}

#[test]
fn extremes_saturate_and_nan_passes_through() {
    for k in kernels() {
        let mut v = [
            f32::NEG_INFINITY,
            -1e30,
            -104.0,
            -103.0,
            -88.0,
            -87.0,
            -0.0,
            0.0,
            88.72,
            88.73,
            1e30,
            f32::INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ];
        let xs = v;
        exp_in_place_with(k, &mut v);
        assert_eq!(&v[..3], &[0.0; 3], "{k:?}: the underflow end");
        assert!(v[3] > 0.0 && !v[4].is_normal() && v[5].is_normal(), "{k:?}: -103 and -88 are subnormal, -87 is not");
        assert_eq!((v[6], v[7]), (1.0, 1.0), "{k:?}: exp(±0)");
        assert!(v[8].is_finite() && v[8] > 3.3e38, "{k:?}: exp(88.72) = {}", v[8]);
        assert_eq!(&v[9..12], &[f32::INFINITY; 3], "{k:?}: the overflow end");
        assert!(v[12].is_nan(), "{k:?}: NaN");
        assert_eq!(v[13], 1.0, "{k:?}");
        for (x, y) in xs.iter().zip(&v).filter(|(x, _)| x.is_finite()) {
            let reference = f64::from(*x).exp() as f32;
            assert!(ulps(*y, reference) <= 2, "{k:?}: exp({x}) = {y}, reference {reference}");
        }
    }
}

#[test]
fn every_kernel_gives_the_portable_bits() {
    let mut state = 0x9e37_79b9_u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    // Random values over the whole interesting range, plus random bit patterns (NaNs, infinities).
    let mut data: Vec<f32> = (0..5000).map(|_| (next() as f32 / u32::MAX as f32) * 200.0 - 110.0).collect();
    data.extend((0..500).map(|_| f32::from_bits(next())));
    let portable: Vec<f32> = data.iter().map(|&x| exp(x)).collect();
    for k in kernels() {
        for len in (0..40).chain([data.len()]) {
            let mut v = data[..len].to_vec();
            exp_in_place_with(k, &mut v);
            for (i, (a, b)) in v.iter().zip(&portable).enumerate() {
                assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{k:?} len {len} element {i}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn shifted_sums_are_bit_identical_across_kernels_and_accurate() {
    let data: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.3).collect();
    for len in [0, 1, 7, 15, 16, 17, 31, 33, 250, 1000] {
        let shift = data[..len].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let runs: Vec<(Vec<f32>, f32)> = kernels()
            .into_iter()
            .map(|k| {
                let mut v = data[..len].to_vec();
                let s = exp_shifted_sum_with(k, &mut v, shift);
                (v, s)
            })
            .collect();
        for (v, s) in &runs[1..] {
            assert_eq!(s.to_bits(), runs[0].1.to_bits(), "len {len}: sums differ");
            assert_eq!(v, &runs[0].0, "len {len}: values differ");
        }
        let exact: f64 = data[..len].iter().map(|&x| (f64::from(x) - f64::from(shift)).exp()).sum();
        assert!((f64::from(runs[0].1) - exact).abs() <= 1e-6 * exact.max(1.0), "len {len}: sum {} vs {exact}", runs[0].1);
    }
}
