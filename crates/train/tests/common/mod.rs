//! Helpers shared by the integration tests (each test file that needs them says `mod common;`).
use candle_core::{Device, Tensor, Var};

/// Checks `analytic`, the gradient of `loss` in element `i` of `var`, against the central
/// difference `(loss(+eps) − loss(−eps)) / 2eps`, then restores the element. The tolerance (2%
/// relative + 2e-3 absolute) covers f32 rounding in the loss at the step sizes the tests use.
pub fn assert_gradient_element(name: &str, var: &Var, i: usize, analytic: f32, eps: f64, loss: impl Fn() -> f64) {
    let base: Vec<f32> = var.flatten_all().unwrap().to_vec1().unwrap();
    let at = |delta: f64| {
        let mut v = base.clone();
        v[i] += delta as f32;
        var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap()).unwrap();
        loss()
    };
    let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
    var.set(&Tensor::from_vec(base, var.shape(), &Device::Cpu).unwrap()).unwrap();
    let g = f64::from(analytic);
    assert!((g - numeric).abs() <= 2e-2 * numeric.abs().max(g.abs()) + 2e-3, "{name}[{i}]: analytic {g}, numeric {numeric}");
}
