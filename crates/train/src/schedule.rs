//! Learning-rate schedule: linear warmup then cosine decay to zero, the same curve as
//! transformers' `get_cosine_schedule_with_warmup` (so runs compare with HF Trainer + PEFT).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineSchedule {
    pub base_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl CosineSchedule {
    /// Learning rate of optimizer step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        self.base_lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp)] // 0 and the base rate are exact by construction
    fn warmup_then_cosine() {
        let s = CosineSchedule { base_lr: 1.0, warmup_steps: 10, total_steps: 110 };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 0.5).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(60) - 0.5).abs() < 1e-12);
        assert!(s.lr(109) > 0.0 && s.lr(109) < 0.001);
        let flat = CosineSchedule { base_lr: 2e-4, warmup_steps: 0, total_steps: 4 };
        assert_eq!(flat.lr(0), 2e-4);
    }
}
