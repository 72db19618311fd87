//! Analytic LoRA gradients (through the frozen-weight matmul's custom backward, the
//! differentiable RMSNorm/RoPE/softmax path and the masked loss) against central finite
//! differences on a tiny random Llama.
mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tinyforge_model::{Llama, TinyOptions, tiny::random_weights};
use tinyforge_train::{
    LoraConfig,
    batches::{Batch, make_batch},
    data::Example,
    trainable::{LlamaForTraining, TrainableLm},
};

/// A tiny random Llama (2 layers) with LoRA on `targets`, every A and B random (B starts at
/// zero, which would make A's gradient zero).
fn tiny_lora(targets: &[&str], fused_residual: bool) -> LlamaForTraining {
    let opts = TinyOptions { layers: 2, hidden: 32, heads: 4, kv_heads: 2, intermediate: 64, ..TinyOptions::default() };
    let cfg = opts.config().unwrap();
    let mut llama = Llama::new(cfg, &random_weights(&opts.config().unwrap(), 7).unwrap()).unwrap();
    llama.set_fused_residual(fused_residual);
    let lora = LoraConfig {
        r: 2,
        alpha: 4.0,
        dropout: 0.0,
        use_rslora: false,
        target_modules: targets.iter().map(|t| (*t).to_string()).collect(),
    };
    let model = LlamaForTraining::lora(llama, &lora, 3).unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let mut values = HashMap::new();
    for (name, var) in model.parameters() {
        let n = var.elem_count();
        let data: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 0.4 - 0.2).collect();
        values.insert(name.clone(), Tensor::from_vec(data, var.shape(), &Device::Cpu).unwrap());
    }
    model.set_parameters(&values).unwrap();
    model
}

fn tiny_batch() -> Batch {
    let ex = |ids: Vec<u32>| Example { labels: (0..ids.len()).map(|j| j >= 2).collect(), ids, line: 1 };
    let (a, b) = (ex(vec![5, 17, 300, 42, 9, 77]), ex(vec![8, 100, 3, 250]));
    make_batch(&[&a, &b], 0).unwrap()
}

/// With a LoRA MLP target (the separate-ops path) and with the default attention-only targets
/// (the frozen MLP runs inside `residual_mlp`).
#[test]
fn lora_gradients_match_finite_differences() {
    for targets in [&["q_proj", "v_proj", "o_proj", "down_proj"][..], &["q_proj", "k_proj", "v_proj", "o_proj"]] {
        let model = tiny_lora(targets, true);
        let batch = tiny_batch();
        let loss = |m: &LlamaForTraining| f64::from(m.loss_sum(&batch, true).unwrap().to_scalar::<f32>().unwrap());
        let grads = model.loss_sum(&batch, true).unwrap().backward().unwrap();
        let mut rng = StdRng::seed_from_u64(12);
        let eps = 1e-2f64;
        let mut checked = 0;
        for (name, var) in model.parameters() {
            let analytic = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for _ in 0..3 {
                let i = rng.random_range(0..analytic.len());
                common::assert_gradient_element(name, var, i, analytic[i], eps, || loss(&model));
                checked += 1;
            }
        }
        assert_eq!(checked, 2 * 4 * 2 * 3);
    }
}

/// The fused block tail (`residual_mlp`) must not change training by a bit: loss and every LoRA
/// gradient equal the separate ops' exactly.
#[test]
fn fused_residual_path_is_bit_identical_to_separate_ops() {
    let targets = ["q_proj", "k_proj", "v_proj", "o_proj"];
    let (fused, separate) = (tiny_lora(&targets, true), tiny_lora(&targets, false));
    let batch = tiny_batch();
    let run = |m: &LlamaForTraining| {
        let loss = m.loss_sum(&batch, true).unwrap();
        let grads = loss.backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let g: Vec<Vec<f32>> = m.parameters().iter().map(|(_, v)| flat(grads.get(v.as_tensor()).unwrap())).collect();
        (loss.to_scalar::<f32>().unwrap().to_bits(), g)
    };
    let ((loss_f, grads_f), (loss_s, grads_s)) = (run(&fused), run(&separate));
    assert_eq!(loss_f, loss_s, "loss bits");
    for ((name, _), (f, s)) in fused.parameters().iter().zip(grads_f.iter().zip(&grads_s)) {
        assert_eq!(f, s, "{name}: gradients differ");
    }
}
