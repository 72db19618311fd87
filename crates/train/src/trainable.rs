//! The trainable language model: what the training loop needs from a model (`TrainableLm`),
//! implemented by the Llama decoder with LoRA adapters or with every weight trainable
//! (`LlamaForTraining`), and by a toy bigram model (`toy::BigramLm`) that tests the loop without
//! a transformer. Named `trainable` so it never reads as the `tinyforge_model` crate.
use std::{collections::HashMap, sync::Arc};

use candle_core::{D, Tensor, Var};
use tinyforge_model::{ForwardMode, Llama, Projection};

use crate::{
    batches::Batch,
    checkpoint::{ParamsMismatch, set_vars},
    error::Result,
    head_loss::head_nll_sum,
    lora::{DropoutRng, FrozenProjection, LoraConfig, LoraLinear, TrainableLinear, without_grad},
    seeds::{PURPOSE_INIT, derived_rng},
};

pub trait TrainableLm: Send + Sync {
    /// Summed next-token negative log-likelihood over the batch's labelled positions (a scalar).
    /// `train` selects the differentiable forward path (and dropout, if seeded); without it
    /// (evaluation) the pass builds no graph where the model can avoid one (LoRA).
    fn loss_sum(&self, batch: &Batch, train: bool) -> Result<Tensor>;
    /// Trainable parameters under stable names (checkpoint keys; PEFT names for LoRA).
    fn parameters(&self) -> &[(String, Var)];
    /// Reseeds dropout for the next forward pass; `None` turns it off.
    fn set_dropout_seed(&self, _seed: Option<u64>) {}
}

/// `-Σ log softmax(logits)[target]` for logits `[n, vocab]`.
pub fn nll_sum(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    logp.gather(&targets.unsqueeze(1)?, 1)?.sum_all()?.neg()
}

/// PEFT's key for a LoRA matrix of the projection `model.layers.{i}.self_attn.q_proj`.
pub fn peft_key(module: &str, which: char) -> String {
    format!("base_model.model.{module}.lora_{which}.weight")
}

pub struct LlamaForTraining {
    model: Llama,
    params: Vec<(String, Var)>,
    dropout: Arc<DropoutRng>,
    /// LoRA layers by module path (empty for full fine-tuning), for merging.
    lora_layers: Vec<(String, Arc<LoraLinear>)>,
}

impl LlamaForTraining {
    /// Wraps every target projection in a fresh LoRA adapter (A from `seed`, B = 0).
    pub fn lora(mut model: Llama, cfg: &LoraConfig, seed: u64) -> Result<Self> {
        let dropout = Arc::new(DropoutRng::default());
        let mut init = derived_rng(seed, PURPOSE_INIT, 0);
        let (mut params, mut lora_layers) = (Vec::new(), Vec::new());
        model.map_projections(|name, base| {
            if !cfg.targets(name) {
                return Ok(Arc::new(FrozenProjection::new(&base)) as Arc<dyn Projection>);
            }
            let layer = Arc::new(LoraLinear::new(base, cfg, &mut init, dropout.clone())?);
            params.push((peft_key(name, 'A'), layer.a.clone()));
            params.push((peft_key(name, 'B'), layer.b.clone()));
            lora_layers.push((name.to_string(), layer.clone()));
            Ok(layer as Arc<dyn Projection>)
        })?;
        Ok(Self { model, params, dropout, lora_layers })
    }

    /// Makes every weight trainable: the q/k/v/o/gate/up/down projections, the token embeddings,
    /// every RMSNorm weight and the output head. A tied head is the embedding `Var` itself (one
    /// parameter, `model.embed_tokens.weight`, as in HF); an untied one is `lm_head.weight`.
    pub fn full(mut model: Llama) -> Result<Self> {
        let mut params = Vec::new();
        model.map_projections(|name, base| {
            let layer = Arc::new(TrainableLinear::new(&base)?);
            params.push((format!("{name}.weight"), layer.weight.clone()));
            Ok(layer as Arc<dyn Projection>)
        })?;
        model.map_dense_weights(|name, base| {
            // `from_tensor` copies the storage: `Var::set` must not write into the loaded base.
            let var = Var::from_tensor(base)?;
            params.push((name.to_string(), var.clone()));
            Ok(var.as_tensor().clone())
        })?;
        Ok(Self { model, params, dropout: Arc::new(DropoutRng::default()), lora_layers: Vec::new() })
    }

    pub fn llama(&self) -> &Llama {
        &self.model
    }

    /// Overwrites the trainable parameters with `tensors` (same names and shapes, all present).
    pub fn set_parameters(&self, tensors: &HashMap<String, Tensor>) -> std::result::Result<(), ParamsMismatch> {
        set_vars(&self.params, tensors)
    }

    /// HF-named weights `W + s·B·A` for every adapted projection (to merge into a base folder);
    /// for a full fine-tune, every trained weight (a tied head appears once, as the embedding).
    pub fn merged_projections(&self) -> Result<Vec<(String, Tensor)>> {
        if self.lora_layers.is_empty() {
            return Ok(self.params.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect());
        }
        let mut out = Vec::new();
        for (name, layer) in &self.lora_layers {
            out.push((format!("{name}.weight"), layer.merged_weight()?));
        }
        Ok(out)
    }
}

impl TrainableLm for LlamaForTraining {
    fn loss_sum(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        let hidden = if train {
            self.model.forward_hidden(&batch.input_ids, ForwardMode::Train)?
        } else {
            without_grad(|| self.model.forward_hidden(&batch.input_ids, ForwardMode::Eval))?
        };
        let h = hidden.dim(2)?;
        // Only labelled positions go through the (vocab-sized) head: most of a chat is prompt.
        let picked = hidden.reshape(((), h))?.index_select(&batch.positions, 0)?;
        // The head and the cross-entropy as one chunked op: no `[labelled, vocab]` logits tensor.
        let targets = batch.targets.to_vec1::<u32>()?;
        Ok(head_nll_sum(&picked, self.model.lm_head_weight(), &targets, train)?)
    }

    fn parameters(&self) -> &[(String, Var)] {
        &self.params
    }

    fn set_dropout_seed(&self, seed: Option<u64>) {
        self.dropout.reseed(seed);
    }
}

/// A bigram language model (`logits = W·emb[token]`): enough to test schedule, accumulation,
/// checkpoints, resume and cancel quickly and independently of the Llama.
pub mod toy {
    use candle_core::{DType, Device, Tensor, Var};

    use super::{Batch, PURPOSE_INIT, Result, TrainableLm, derived_rng, nll_sum};

    pub struct BigramLm {
        params: Vec<(String, Var)>,
        vocab: usize,
    }

    impl BigramLm {
        pub fn new(vocab: usize, dim: usize, seed: u64) -> Result<Self> {
            use rand::Rng;
            let mut rng = derived_rng(seed, PURPOSE_INIT, 0);
            let mut init = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>() * 0.2 - 0.1).collect() };
            let emb = Var::from_vec(init(vocab * dim), (vocab, dim), &Device::Cpu)?;
            let out = Var::from_vec(init(vocab * dim), (vocab, dim), &Device::Cpu)?;
            Ok(Self { params: vec![("emb".into(), emb), ("out".into(), out)], vocab })
        }
    }

    impl TrainableLm for BigramLm {
        fn loss_sum(&self, batch: &Batch, _train: bool) -> Result<Tensor> {
            let ids = batch.input_ids.flatten_all()?.index_select(&batch.positions, 0)?;
            let x = self.params[0].1.as_tensor().index_select(&ids, 0)?;
            let logits = x.matmul(&self.params[1].1.as_tensor().t()?)?;
            debug_assert_eq!(logits.dim(1)?, self.vocab);
            Ok(nll_sum(&logits.to_dtype(DType::F32)?, &batch.targets)?)
        }

        fn parameters(&self) -> &[(String, Var)] {
            &self.params
        }
    }
}
