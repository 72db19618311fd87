//! The training loop on a toy bigram model: determinism, learning, checkpoint/resume exactness,
//! cancel, and corrupt or mismatched checkpoints. Independent of the Llama.
use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicBool, Ordering},
};

use tinyforge_testkit::temp_dir;
use tinyforge_train::{
    LoopConfig, TrainError,
    data::Example,
    trainable::{TrainableLm, toy::BigramLm},
    trainer::Trainer,
};

/// Sequences following `next = (3·cur + 1) mod 17`: a bigram model can learn them exactly.
fn examples(n: usize) -> Vec<Example> {
    (0..n)
        .map(|i| {
            let len = 4 + i % 5;
            let mut ids = vec![(i % 17) as u32];
            for _ in 1..len {
                ids.push((ids.last().unwrap() * 3 + 1) % 17);
            }
            let labels = (0..len).map(|j| j >= 2).collect();
            Example { ids, labels, line: i + 1 }
        })
        .collect()
}

fn cfg(max_steps: usize) -> LoopConfig {
    LoopConfig {
        batch_size: 2,
        grad_accum: 2,
        max_steps: Some(max_steps),
        lr: 0.05,
        warmup_ratio: 0.2,
        eval_every: 2,
        ..LoopConfig::default()
    }
}

fn losses(
    model: &dyn TrainableLm,
    dir: &std::path::Path,
    cfg: &LoopConfig,
    resume: bool,
    cancel_after: Option<usize>,
) -> Result<Vec<f64>, TrainError> {
    let data = examples(24);
    let (train, eval) = data.split_at(20);
    let cancel = AtomicBool::new(false);
    let mut seen = Vec::new();
    let mut on_progress = |p: &tinyforge_train::Progress| {
        seen.push(p.loss);
        if cancel_after == Some(p.step) {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let mut trainer = Trainer::new(model, train, eval, cfg, dir, BTreeMap::new())?;
    if resume {
        trainer.resume()?;
    }
    let out = trainer.run(&mut on_progress, &cancel)?;
    Ok(out.history.iter().map(|r| r.loss).collect())
}

#[test]
fn same_seed_same_losses_and_it_learns() {
    let (d1_guard, d2_guard) = (temp_dir("det1"), temp_dir("det2"));
    let (d1, d2) = (d1_guard.path(), d2_guard.path());
    let a = losses(&BigramLm::new(17, 8, 1).unwrap(), d1, &cfg(40), false, None).unwrap();
    let b = losses(&BigramLm::new(17, 8, 1).unwrap(), d2, &cfg(40), false, None).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 40);
    assert!(a[39] < a[0] * 0.5, "loss {} -> {}", a[0], a[39]);
    let metrics = std::fs::read_to_string(d1.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 40);
    assert!(metrics.lines().nth(1).unwrap().contains("\"evalLoss\""));
}

#[test]
fn cancel_then_resume_continues_the_same_loss_sequence() {
    let (straight_guard, resumed_guard) = (temp_dir("straight"), temp_dir("resumed"));
    let (straight_dir, resumed_dir) = (straight_guard.path(), resumed_guard.path());
    let straight = losses(&BigramLm::new(17, 8, 2).unwrap(), straight_dir, &cfg(6), false, None).unwrap();

    let model = BigramLm::new(17, 8, 2).unwrap();
    let err = losses(&model, resumed_dir, &cfg(6), false, Some(3)).unwrap_err();
    assert_eq!(err.code(), "ABORTED");
    assert!(resumed_dir.join("checkpoints/step-000003/state.json").is_file());
    // A fresh process: a new model with different initial weights, all restored from disk.
    let fresh = BigramLm::new(17, 8, 99).unwrap();
    let resumed = losses(&fresh, resumed_dir, &cfg(6), true, None).unwrap();
    assert_eq!(resumed, straight, "bit-identical loss sequence after resume");
}

#[test]
fn periodic_checkpoints_keep_the_newest_two() {
    let dir_guard = temp_dir("periodic");
    let dir = dir_guard.path();
    let c = LoopConfig { checkpoint_every: 2, ..cfg(9) };
    losses(&BigramLm::new(17, 8, 3).unwrap(), dir, &c, false, None).unwrap();
    let names: Vec<String> =
        tinyforge_train::checkpoint::list(&dir.join("checkpoints")).unwrap().iter().map(|(s, _)| s.to_string()).collect();
    assert_eq!(names, ["6", "8"]);
}

#[test]
fn mismatched_and_corrupt_checkpoints_are_refused() {
    let dir_guard = temp_dir("corrupt");
    let dir = dir_guard.path();
    let model = BigramLm::new(17, 8, 4).unwrap();
    assert_eq!(losses(&model, dir, &cfg(6), false, Some(2)).unwrap_err().code(), "ABORTED");

    let other_lr = LoopConfig { lr: 0.01, ..cfg(6) };
    let err = losses(&model, dir, &other_lr, true, None).unwrap_err();
    assert_eq!(err.code(), "CHECKPOINT_MISMATCH");
    assert!(err.to_string().contains("loop"), "{err}");

    let params = dir.join("checkpoints/step-000002/params.safetensors");
    let mut bytes = std::fs::read(&params).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&params, bytes).unwrap();
    assert_eq!(losses(&model, dir, &cfg(6), true, None).unwrap_err().code(), "CHECKPOINT_CORRUPT");

    std::fs::write(dir.join("checkpoints/step-000002/state.json"), "{ not json").unwrap();
    assert_eq!(losses(&model, dir, &cfg(6), true, None).unwrap_err().code(), "CHECKPOINT_CORRUPT");

    let empty_guard = temp_dir("nockpt");

    let empty = empty_guard.path();
    assert_eq!(losses(&model, empty, &cfg(6), true, None).unwrap_err().code(), "NO_CHECKPOINT");
}

#[test]
fn early_stopping_ends_the_run_when_eval_stops_improving() {
    let dir_guard = temp_dir("early");
    let dir = dir_guard.path();
    let train = examples(20);
    // Eval data follows a different rule, so fitting the training rule makes eval loss worse.
    let eval: Vec<Example> = (0..6)
        .map(|i| {
            let mut ids = vec![i as u32];
            for _ in 1..6 {
                ids.push((ids.last().unwrap() * 5 + 2) % 17);
            }
            Example { labels: vec![true; 6], ids, line: i + 1 }
        })
        .collect();
    let c = LoopConfig { eval_every: 1, early_stopping_patience: Some(3), lr: 0.1, warmup_ratio: 0.0, ..cfg(200) };
    let model = BigramLm::new(17, 8, 5).unwrap();
    let out = Trainer::new(&model, &train, &eval, &c, dir, BTreeMap::new()).unwrap().run(&mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert!(out.stopped_early);
    assert!(out.steps < 200, "{}", out.steps);
    let evals: Vec<f64> = out.history.iter().filter_map(|h| h.eval_loss).collect();
    let best = evals.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(evals[evals.len() - 3..].iter().all(|&e| e >= best));
}

#[test]
fn rehearsal_epochs_count_their_slice_and_resume_exactly() {
    // 20 training examples, the last 6 passages over 3 epochs: each epoch 14 records + 2 passages
    // = 16 examples = 8 batches of 2 = 4 steps of 2; 12 in all (not 3 x 5 = 15 over all 20).
    let c = LoopConfig { max_steps: None, epochs: 3, rehearsal: 6, ..cfg(0) };
    assert_eq!(c.total_steps(20), 12);
    let (straight_guard, resumed_guard) = (temp_dir("reh-straight"), temp_dir("reh-resumed"));
    let straight = losses(&BigramLm::new(17, 8, 5).unwrap(), straight_guard.path(), &c, false, None).unwrap();
    assert_eq!(straight.len(), 12);
    let model = BigramLm::new(17, 8, 5).unwrap();
    assert_eq!(losses(&model, resumed_guard.path(), &c, false, Some(5)).unwrap_err().code(), "ABORTED");
    let resumed = losses(&BigramLm::new(17, 8, 77).unwrap(), resumed_guard.path(), &c, true, None).unwrap();
    assert_eq!(resumed, straight, "bit-identical across the epoch boundary after resume");
}
