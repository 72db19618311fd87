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
    batches::make_batch,
    data::Example,
    trainable::{LlamaForTraining, TrainableLm},
};

#[test]
fn lora_gradients_match_finite_differences() {
    let opts = TinyOptions { layers: 2, hidden: 32, heads: 4, kv_heads: 2, intermediate: 64, ..TinyOptions::default() };
    let cfg = opts.config().unwrap();
    let llama = Llama::new(cfg, &random_weights(&opts.config().unwrap(), 7).unwrap()).unwrap();
    let lora = LoraConfig {
        r: 2,
        alpha: 4.0,
        dropout: 0.0,
        use_rslora: false,
        target_modules: ["q_proj", "v_proj", "o_proj", "down_proj"].map(String::from).to_vec(),
    };
    let model = LlamaForTraining::lora(llama, &lora, 3).unwrap();
    // B starts at zero (so A's gradient would be zero): give every B random values first.
    let mut rng = StdRng::seed_from_u64(11);
    let mut values = HashMap::new();
    for (name, var) in model.parameters() {
        let n = var.elem_count();
        let data: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 0.4 - 0.2).collect();
        values.insert(name.clone(), Tensor::from_vec(data, var.shape(), &Device::Cpu).unwrap());
    }
    model.set_parameters(&values).unwrap();

    let ex = |ids: Vec<u32>| Example { labels: (0..ids.len()).map(|j| j >= 2).collect(), ids, line: 1 };
    let (a, b) = (ex(vec![5, 17, 300, 42, 9, 77]), ex(vec![8, 100, 3, 250]));
    let batch = make_batch(&[&a, &b], 0).unwrap();
    let loss = |m: &LlamaForTraining| f64::from(m.loss_sum(&batch, true).unwrap().to_scalar::<f32>().unwrap());
    let grads = model.loss_sum(&batch, true).unwrap().backward().unwrap();

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
