//! The fused attention op against the composition it replaced, and its determinism.
use candle_core::{Device, Var};

use super::*;
use crate::llama::{blocks::repeat_kv, train_ops};

fn rand(dims: &[usize], seed: u64) -> Tensor {
    let mut state = seed.wrapping_mul(6364136223846793005) | 1;
    let v: Vec<f32> = (0..dims.iter().product::<usize>())
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// The unfused composition `Attention::forward` used before this op.
fn reference(t: &[Tensor], rope: &(Tensor, Tensor), nh: usize, nkv: usize) -> Tensor {
    let (b, s, qw) = t[0].dims3().unwrap();
    let hd = qw / nh;
    let heads = |x: &Tensor, n: usize| x.reshape((b, s, n, hd)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
    let q = train_ops::rope(&heads(&t[0], nh), &rope.0, &rope.1).unwrap();
    let k = train_ops::rope(&heads(&t[1], nkv), &rope.0, &rope.1).unwrap();
    let k = repeat_kv(&k, nh / nkv).unwrap();
    let v = repeat_kv(&heads(&t[2], nkv), nh / nkv).unwrap();
    let scores = q.matmul(&k.t().unwrap()).unwrap();
    let p = train_ops::causal_softmax(&scores, (hd as f32).powf(-0.5)).unwrap();
    p.matmul(&v).unwrap().transpose(1, 2).unwrap().reshape((b, s, qw)).unwrap()
}

/// Output and the gradients of `Σ y·probe` wrt q, k and v.
fn run(f: &dyn Fn(&[Tensor]) -> Tensor, (b, s, nh, nkv, hd): (usize, usize, usize, usize, usize)) -> Vec<Vec<f32>> {
    let dims = [[b, s, nh * hd], [b, s, nkv * hd], [b, s, nkv * hd]];
    let vars: Vec<Var> = (0..3).map(|i| Var::from_tensor(&rand(&dims[i], i as u64 + 1)).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts);
    let loss = (&y * rand(y.dims(), 9)).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let mut out = vec![y.flatten_all().unwrap().to_vec1().unwrap()];
    for v in &vars {
        out.push(grads.get(v).unwrap().flatten_all().unwrap().to_vec1().unwrap());
    }
    out
}

fn compare(shape: (usize, usize, usize, usize, usize)) {
    let (_, s, nh, nkv, hd) = shape;
    let freqs = (rand(&[s, hd / 2], 7) * 3.0).unwrap();
    let rope = (freqs.cos().unwrap(), freqs.sin().unwrap());
    let scale = (hd as f32).powf(-0.5);
    let fused = |t: &[Tensor]| causal_attention(&t[0], &t[1], &t[2], &rope.0, &rope.1, nh, nkv, hd, scale).unwrap();
    let got = run(&fused, shape);
    let want = run(&|t| reference(t, &rope, nh, nkv), shape);
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        let diff = a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "output {i} (y, dq, dk, dv) differs by {diff}");
    }
    // Bit-identical whatever the thread count.
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let one = pool(1).install(|| run(&fused, shape));
    let three = pool(3).install(|| run(&fused, shape));
    assert_eq!(one, got);
    assert_eq!(three, got);
}

#[test]
fn grouped_query_attention_matches_the_unfused_ops() {
    compare((2, 7, 4, 2, 8));
}

#[test]
fn multi_head_attention_matches_the_unfused_ops() {
    compare((2, 5, 3, 3, 6));
}

#[test]
fn one_kv_head_for_all_query_heads_matches_the_unfused_ops() {
    compare((1, 9, 3, 1, 4));
}

#[test]
fn sequences_longer_than_a_causal_block_match_the_unfused_ops() {
    compare((1, 2 * BLOCK + 5, 2, 1, 4));
    compare((2, BLOCK + 3, 6, 2, 8));
}
