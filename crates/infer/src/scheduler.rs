//! The scheduler thread behind `InferenceSession`: it owns the `OrtDecoder` and runs continuous
//! batching over its slots. Each loop turn takes new requests into free slots, drops cancelled
//! ones, runs prefill forwards up to a token budget and then ONE decode step for every request
//! past its prompt. The budget only guards streams that were decoding when the turn began: with
//! none, every waiting prompt (arrivals during the turn too) is prefilled before the step.
//!
//! The prefill forward is either the first chunks of several new requests together (right
//! padded to the longest, at most `budget` padded tokens, and only while the padding stays
//! small) or the next chunk of one long prompt, whichever belongs to the request admitted first. GroupQueryAttention cannot mix them, nor
//! decode rows with prefill rows, in one forward (ORT takes a multi-token batch only as a
//! first prompt), so the budget is what bounds the stall a prefill puts on the running streams.
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};

use tinyforge_generate::{Decoder, GenerateParams, Sequence};
use tinyforge_tokenizer::Tokenizer;

use crate::decoder::OrtDecoder;
use crate::engine::{EngineError, Event, Sink};

pub(crate) struct Job {
    pub ids: Vec<u32>,
    pub params: GenerateParams,
    pub cancel: Arc<AtomicBool>,
    pub sink: Sink,
}

struct Live {
    slot: usize,
    /// Admission order: prefill is first come, first served.
    order: u64,
    seq: Sequence,
    ids: Vec<u32>,
    prefilled: usize,
    cancel: Arc<AtomicBool>,
    sink: Sink,
}

pub(crate) struct Scheduler {
    pub decoder: OrtDecoder,
    pub tok: Arc<Tokenizer>,
    pub eos: Vec<u32>,
    /// Prompt tokens per prefill chunk.
    pub chunk: usize,
    /// Prompt tokens (padded) prefilled per loop turn, over one or more forwards.
    pub budget: usize,
    pub rx: Receiver<Job>,
    queue: VecDeque<Job>,
    live: Vec<Live>,
    admitted: u64,
}

impl Scheduler {
    pub(crate) fn new(decoder: OrtDecoder, tok: Arc<Tokenizer>, eos: Vec<u32>, chunk: usize, budget: usize, rx: Receiver<Job>) -> Self {
        Self { decoder, tok, eos, chunk, budget, rx, queue: VecDeque::new(), live: Vec::new(), admitted: 0 }
    }

    pub(crate) fn run(mut self) {
        let mut open = true;
        loop {
            if open && self.live.is_empty() && self.queue.is_empty() {
                self.decoder.idle();
                match self.rx.recv() {
                    Ok(j) => self.queue.push_back(j),
                    Err(_) => open = false,
                }
            }
            open = open && self.pull();
            if !open {
                // Closing: whatever runs or waits ends as cancelled.
                for l in &self.live {
                    l.cancel.store(true, Ordering::Relaxed);
                }
                for mut j in self.queue.drain(..) {
                    (j.sink)(Event::Done(Err(EngineError::Closed)));
                }
            }
            if self.live.is_empty() && self.queue.is_empty() {
                if open {
                    continue;
                }
                return;
            }
            self.admit();
            self.reap_cancelled();
            // Prefill forwards until the turn has taken `budget` tokens (the first always runs):
            // prompts that arrive together all get their first token before the next decode
            // step instead of one per step, and the stall on running streams stays bounded.
            // With no stream decoding as the turn begins there is no stall to bound, so every
            // waiting prompt goes first, also those arriving meanwhile: a burst's last first
            // token no longer waits behind decode steps of the burst's first prompts (8 clients
            // in step arrive together, ~400 prompt tokens: a 256 budget put one or two decode
            // steps of up to 8 rows before the last prompt's prefill).
            let protect = self.live.iter().any(|l| l.prefilled == l.ids.len());
            let mut spent = 0;
            while !protect || spent < self.budget.max(1) {
                let cap = if protect { self.budget.saturating_sub(spent) } else { self.budget };
                match self.prefill(cap) {
                    Some(n) => spent += n,
                    None => break,
                }
                // Requests that came during that forward join this turn (when a slot is free).
                open = open && self.pull();
                if !open {
                    break;
                }
                self.admit();
            }
            self.decode_step();
        }
    }

    /// Queues whatever has been submitted; false once every sender is gone (the session closes).
    fn pull(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(j) => self.queue.push_back(j),
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn admit(&mut self) {
        while self.live.len() < self.decoder.slots() {
            let Some(mut job) = self.queue.pop_front() else { return };
            let seq = Sequence::new(&job.ids, job.params.clone(), &self.eos, self.decoder.context_len());
            if job.cancel.load(Ordering::Relaxed) {
                let done = seq.map_err(EngineError::from).map(|mut s| {
                    let _ = s.cancel(&self.tok);
                    s.into_generation()
                });
                (job.sink)(Event::Done(done));
                continue;
            }
            // The lowest free slot: a decode step computes rows up to the highest one in use.
            let slot = (0..self.decoder.slots()).find(|s| !self.live.iter().any(|l| l.slot == *s)).expect("a free slot");
            match seq {
                Ok(seq) => {
                    self.decoder.release(slot);
                    self.admitted += 1;
                    let order = self.admitted;
                    self.live.push(Live { slot, order, seq, ids: job.ids, prefilled: 0, cancel: job.cancel, sink: job.sink });
                }
                Err(e) => (job.sink)(Event::Done(Err(e.into()))),
            }
        }
    }

    /// Ends live `i` with `result` (its generation when `None`) and frees its slot.
    fn finish(&mut self, i: usize, result: Option<EngineError>) {
        let mut l = self.live.swap_remove(i);
        self.decoder.release(l.slot);
        let done = match result {
            Some(e) => Err(e),
            None => Ok(l.seq.into_generation()),
        };
        (l.sink)(Event::Done(done));
    }

    fn reap_cancelled(&mut self) {
        let mut i = 0;
        while i < self.live.len() {
            if self.live[i].cancel.load(Ordering::Relaxed) {
                let l = &mut self.live[i];
                match l.seq.cancel(&self.tok) {
                    Ok(step) => {
                        (l.sink)(Event::Step { step, logprob: None, top: Vec::new() });
                        self.finish(i, None);
                    }
                    Err(e) => self.finish(i, Some(e.into())),
                }
            } else {
                i += 1;
            }
        }
    }

    /// Feeds `logits` to the live request on `slot`; emits the step and finishes it when done.
    fn accept(&mut self, slot: usize, logits: &[f32]) {
        let Some(i) = self.live.iter().position(|l| l.slot == slot) else { return };
        let l = &mut self.live[i];
        match l.seq.accept(logits, &self.tok) {
            Ok(mut step) => {
                let (logprob, top) = (step.logprob, std::mem::take(&mut step.top_logprobs));
                (l.sink)(Event::Step { step, logprob, top });
                if l.seq.is_finished() {
                    self.finish(i, None);
                }
            }
            Err(e) => self.finish(i, Some(e.into())),
        }
    }

    /// One prefill forward: the next chunk of the oldest request still prefilling, together with
    /// the first chunks of the next-oldest new requests when it is a first chunk too (at most
    /// `budget` padded tokens in all). Returns the padded tokens run, `None` when no prompt waits.
    fn prefill(&mut self, budget: usize) -> Option<usize> {
        let mut waiting: Vec<usize> = (0..self.live.len()).filter(|&i| self.live[i].prefilled < self.live[i].ids.len()).collect();
        waiting.sort_unstable_by_key(|&i| self.live[i].order);
        let &first = waiting.first()?;
        let mut pick = vec![first];
        if self.live[first].prefilled == 0 {
            let mut longest = self.live[first].ids.len().min(self.chunk);
            let mut real = longest;
            for &i in &waiting[1..] {
                let l = &self.live[i];
                if l.prefilled > 0 {
                    continue;
                }
                let n = l.ids.len().min(self.chunk);
                let s = longest.max(n);
                let padded = (pick.len() + 1) * s;
                // Prefill is compute-bound already at one short prompt: on SmolLM2 int8 (busy
                // 2-core Xeon, 8 prompts of 20-60 tokens) one forward per prompt took 1103 ms,
                // all 8 in one forward 1648 ms for 440 padded tokens = 15% less per padded
                // token but 1.5x more tokens. So rows join only while padding stays under 1/8.
                if padded > budget || padded * 7 > (real + n) * 8 {
                    continue;
                }
                pick.push(i);
                (longest, real) = (s, real + n);
            }
        }
        let rows: Vec<(usize, &[u32])> = pick
            .iter()
            .map(|&i| {
                let l = &self.live[i];
                (l.slot, &l.ids[l.prefilled..(l.prefilled + self.chunk).min(l.ids.len())])
            })
            .collect();
        let result = self.decoder.prefill_rows(&rows);
        let sizes: Vec<(usize, usize)> = rows.iter().map(|r| (r.0, r.1.len())).collect();
        let padded = sizes.len() * sizes.iter().map(|r| r.1).max().unwrap_or(0);
        let done: Vec<(usize, bool)> = sizes.iter().zip(&pick).map(|(&(slot, n), &i)| (slot, self.advance(i, n))).collect();
        match result {
            Ok(logits) => {
                let v = self.decoder.vocab_size();
                // Accepting may finish (swap-remove) a request, so go by slot, not index.
                for (r, &(slot, whole)) in done.iter().enumerate() {
                    if whole {
                        self.accept(slot, &logits[r * v..(r + 1) * v]);
                    }
                }
            }
            Err(e) => {
                for &(slot, _) in &done {
                    if let Some(i) = self.live.iter().position(|l| l.slot == slot) {
                        self.finish(i, Some(EngineError::generate(&e)));
                    }
                }
            }
        }
        Some(padded)
    }

    /// Marks `n` more prompt tokens of live `i` prefilled; true when its prompt is complete.
    fn advance(&mut self, i: usize, n: usize) -> bool {
        let l = &mut self.live[i];
        l.prefilled += n;
        l.prefilled == l.ids.len()
    }

    /// One token for every request past its prompt, in one `step`.
    fn decode_step(&mut self) {
        let batch: Vec<(usize, u32)> =
            self.live.iter().filter(|l| l.prefilled == l.ids.len()).filter_map(|l| l.seq.next_input().map(|t| (l.slot, t))).collect();
        if batch.is_empty() {
            return;
        }
        match self.decoder.step(&batch) {
            Ok(logits) => {
                let v = self.decoder.vocab_size();
                for (r, &(slot, _)) in batch.iter().enumerate() {
                    self.accept(slot, &logits[r * v..(r + 1) * v]);
                }
            }
            Err(e) => {
                for &(slot, _) in &batch {
                    if let Some(i) = self.live.iter().position(|l| l.slot == slot) {
                        self.finish(i, Some(EngineError::generate(&e)));
                    }
                }
            }
        }
    }
}
