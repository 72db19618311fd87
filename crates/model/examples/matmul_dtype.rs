//! Does a bf16 / f16 frozen base pay off on this CPU? Times `x · wᵀ` for one SmolLM2 MLP
//! projection shape in each dtype. `cargo run --release -p tinyforge-model --example matmul_dtype`
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

fn main() -> candle_core::Result<()> {
    let (rows, inp, out) = (256, 576, 1536);
    let x = Tensor::randn(0f32, 1.0, (rows, inp), &Device::Cpu)?;
    let w = Tensor::randn(0f32, 1.0, (out, inp), &Device::Cpu)?;
    for dtype in [DType::F32, DType::BF16, DType::F16] {
        let (xd, wd) = (x.to_dtype(dtype)?, w.to_dtype(dtype)?);
        xd.matmul(&wd.t()?)?; // warm-up
        let n = 20;
        let t = Instant::now();
        for _ in 0..n {
            xd.matmul(&wd.t()?)?;
        }
        let s = t.elapsed().as_secs_f64() / f64::from(n);
        println!("{dtype:?}: {:.2} ms, {:.1} GFLOP/s", s * 1e3, 2.0 * (rows * inp * out) as f64 / s / 1e9);
    }
    Ok(())
}
