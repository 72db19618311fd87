//! Forward / forward+backward throughput of the decoder on a real checkpoint, to see where
//! training time goes. `cargo run --release -p tinyforge-model --example speed -- MODEL [SEQ] [BATCH]`
//! Backward needs trainable leaves: rank-8 LoRA-style `Var`s are put on q/k/v/o of every layer.
use std::{sync::Arc, time::Instant};

use candle_core::{DType, Device, Tensor, Var};
use tinyforge_model::{ForwardMode, Llama, Projection, llama::linear};

#[derive(Debug)]
struct LowRank {
    base: Arc<dyn Projection>,
    a: Tensor,
    b: Tensor,
}

impl Projection for LowRank {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.base.forward(x)? + linear(&linear(x, &self.a)?, &self.b)?
    }
    fn base_weight(&self) -> &Tensor {
        self.base.base_weight()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: speed MODEL [SEQ] [BATCH]")?;
    let seq: usize = args.get(2).map_or(Ok(256), |s| s.parse())?;
    let batch: usize = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let t = Instant::now();
    let mut model = Llama::load(std::path::Path::new(path))?;
    println!("load: {:.2}s, threads {}", t.elapsed().as_secs_f64(), candle_core::utils::get_num_threads());
    let vocab = model.config().vocab_size as u32;
    let ids: Vec<u32> = (0..batch * seq).map(|i| (i as u32 * 7919 + 13) % vocab).collect();
    let ids = Tensor::from_vec(ids, (batch, seq), &Device::Cpu)?;
    let tokens = (batch * seq) as f64;

    for mode in [ForwardMode::Eval, ForwardMode::Train] {
        model.forward(&ids, mode)?; // warm-up
        let t = Instant::now();
        model.forward_hidden(&ids, mode)?;
        let s = t.elapsed().as_secs_f64();
        println!("{mode:?} forward_hidden: {s:.3}s = {:.0} tok/s", tokens / s);
    }

    let mut vars = Vec::new();
    model.map_projections(|name, base| {
        if !name.contains("self_attn") {
            return Ok(base);
        }
        let (out, inp) = base.base_weight().dims2()?;
        let a = Var::randn(0f32, 0.02, (8, inp), &Device::Cpu)?;
        let b = Var::randn(0f32, 0.02, (out, 8), &Device::Cpu)?;
        let p = LowRank { base, a: a.as_tensor().clone(), b: b.as_tensor().clone() };
        vars.extend([a, b]);
        Ok(Arc::new(p))
    })?;
    for round in 0..2 {
        let t = Instant::now();
        let hidden = model.forward_hidden(&ids, ForwardMode::Train)?;
        let f = t.elapsed().as_secs_f64();
        let logits = model.lm_head(&hidden.flatten_to(1)?)?;
        let targets = ids.flatten_all()?;
        let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
        let fl = t.elapsed().as_secs_f64();
        let grads = loss.backward()?;
        let total = t.elapsed().as_secs_f64();
        assert!(vars.iter().all(|v| grads.get(v.as_tensor()).is_some()));
        println!(
            "round {round}: forward {f:.2}s, +lm_head/loss {:.2}s, backward {:.2}s; total {total:.2}s = {:.0} tok/s (loss {:.3})",
            fl - f,
            total - fl,
            tokens / total,
            loss.to_dtype(DType::F32)?.to_scalar::<f32>()?
        );
    }
    Ok(())
}
