//! Fixtures the llama op tests share: seeded uniform tensors and a small frozen MLP.
use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::mlp_op::FrozenMlp;
use crate::bf16::PackedWeight;

/// Values uniform in [-1, 1) from a seeded LCG: the same tensor for the same seed on every run.
pub fn rand(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// A frozen MLP of hidden 40 and intermediate 104, with its bf16 packing when `bf16`.
pub fn frozen_mlp(bf16: bool) -> FrozenMlp {
    let (h, i) = (40, 104);
    let (gate, up, down) = ((rand(&[i, h], 1) * 0.3).unwrap(), (rand(&[i, h], 2) * 0.3).unwrap(), (rand(&[h, i], 3) * 0.2).unwrap());
    let packed = bf16.then(|| [&gate, &up, &down].map(|w| Arc::new(PackedWeight::from_tensor(w).unwrap())));
    FrozenMlp { gate, up, down, packed }
}
