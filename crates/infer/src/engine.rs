//! `InferenceSession`: an export folder served by one scheduler thread that owns the
//! `OrtDecoder` and runs continuous batching over its slots. Requests join at the next step
//! boundary (a free slot), their prompt is prefilled one chunk per loop turn between decode
//! steps (so a long prompt never stalls the running streams for its whole prefill), they leave
//! when finished, and a cancelled request frees its slot at the next step.
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tinyforge_generate::{CodedError, Decoder, GenerateParams, Generation, Prompt, Sequence, Step, TokenLogprob, build_prompt, eos_ids};
use tinyforge_tokenizer::Tokenizer;

use crate::decoder::{DecoderOptions, KvMode, OrtDecoder};
use crate::error::InferError;
use crate::folder::ExportFolder;

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// ORT intra-op threads; `None` = ORT's default (one per core).
    pub threads: Option<usize>,
    pub spinning: bool,
    /// Requests generating at once; more wait in a queue.
    pub slots: usize,
    /// Positions per slot; `None` = `max_position_embeddings` capped at 4096 (each slot
    /// preallocates its cache: SmolLM2-135M needs 46 KB per position).
    pub context_len: Option<usize>,
    /// Prompt tokens prefilled per loop turn.
    pub prefill_chunk: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self { threads: None, spinning: false, slots: 8, context_len: None, prefill_chunk: 128 }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Infer(#[from] InferError),
    /// A request the generation loop rejected (bad option, prompt too long, template error).
    #[error("{message}")]
    Generate { code: &'static str, message: String },
    #[error("the inference session is closed")]
    Closed,
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Infer(e) => e.code(),
            Self::Generate { code, .. } => code,
            Self::Closed => "SESSION_CLOSED",
        }
    }

    fn generate(e: &impl CodedError) -> Self {
        Self::Generate { code: e.code(), message: e.to_string() }
    }
}

impl From<tinyforge_generate::GenerateError> for EngineError {
    fn from(e: tinyforge_generate::GenerateError) -> Self {
        Self::Generate { code: e.code(), message: e.to_string() }
    }
}

/// What a request's callback receives: each step (text delta, token, finish) and then the end.
#[derive(Debug)]
pub enum Event {
    /// `logprob` and `top` (the alternatives, when asked) belong to `step.token`.
    Step {
        step: Step,
        logprob: Option<f32>,
        top: Vec<TokenLogprob>,
    },
    Done(Result<Generation, EngineError>),
}

pub type Sink = Box<dyn FnMut(Event) + Send>;

#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub prompt: Prompt,
    /// See `tinyforge_generate::build_prompt`.
    pub chat_template: Option<bool>,
    pub params: GenerateParams,
}

/// Stops a submitted request at the next step boundary (its slot is freed there).
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What the loaded folder is.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub dir: PathBuf,
    pub model_path: PathBuf,
    pub context_len: usize,
    pub slots: usize,
    pub kv_shared: bool,
    pub eos: Vec<u32>,
    pub max_new_tokens: Option<usize>,
}

struct Job {
    ids: Vec<u32>,
    params: GenerateParams,
    cancel: Arc<AtomicBool>,
    sink: Sink,
}

pub struct InferenceSession {
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    tokenizer: Arc<Tokenizer>,
    folder: ExportFolder,
    info: SessionInfo,
}

impl InferenceSession {
    pub fn load(dir: &Path, opts: &EngineOptions) -> Result<Self, EngineError> {
        let folder = ExportFolder::open(dir)?;
        if opts.slots == 0 || opts.prefill_chunk == 0 {
            return Err(InferError::InvalidOption { option: "slots/prefillChunk".into(), reason: "must be at least 1".into() }.into());
        }
        let context_len = opts.context_len.unwrap_or(folder.max_positions.min(4096)).min(folder.max_positions);
        let dopts = DecoderOptions { slots: opts.slots, context_len, threads: opts.threads, spinning: opts.spinning, kv: KvMode::Auto };
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<bool, InferError>>();
        let (tok_tx, tok_rx) = mpsc::channel::<(Arc<Tokenizer>, Vec<u32>)>();
        let (path, shape, chunk) = (folder.model_path.clone(), folder.shape, opts.prefill_chunk);
        // The session and its IoBindings stay on this thread for their whole life.
        let thread = std::thread::Builder::new()
            .name("tinyforge-infer".into())
            .spawn(move || match OrtDecoder::load(&path, shape, &dopts) {
                Ok(d) => {
                    let _ = ready_tx.send(Ok(d.kv_mode() == KvMode::Shared));
                    // Nothing comes when the tokenizer failed: `load` returns that error, this thread ends.
                    if let Ok((tok, eos2)) = tok_rx.recv() {
                        Scheduler { decoder: d, tok, eos: eos2, chunk, rx, queue: VecDeque::new(), live: Vec::new() }.run();
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| InferError::Run { reason: format!("cannot start the scheduler thread: {e}") })?;
        // tokenizer.json parses here (~170 ms CPU for SmolLM2) while that thread builds the ORT
        // session (~400 ms): a load takes the longer of the two instead of their sum.
        let tokenizer = Arc::new(folder.tokenizer()?);
        let eos = eos_ids(&folder.eos, &tokenizer);
        let _ = tok_tx.send((Arc::clone(&tokenizer), eos.clone()));
        let kv_shared = ready_rx.recv().map_err(|_| EngineError::Closed)??;
        let info = SessionInfo {
            dir: dir.to_path_buf(),
            model_path: folder.model_path.clone(),
            context_len,
            slots: opts.slots,
            kv_shared,
            eos,
            max_new_tokens: folder.max_new_tokens,
        };
        Ok(Self { tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)), tokenizer, folder, info })
    }

    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn folder(&self) -> &ExportFolder {
        &self.folder
    }

    /// Queues `req`; `sink` gets every step then `Done` on the scheduler thread. Prompt and
    /// option errors are returned here, before anything is queued.
    pub fn submit(&self, req: &Request, sink: Sink) -> Result<CancelHandle, EngineError> {
        req.params.validate()?;
        let ids = build_prompt(&self.tokenizer, &req.prompt, req.chat_template)?;
        // Checks the prompt against the window now, so the error reaches the caller directly.
        Sequence::new(&ids, req.params.clone(), &self.info.eos, self.info.context_len)?;
        let cancel = CancelHandle::default();
        let job = Job { ids, params: req.params.clone(), cancel: Arc::clone(&cancel.0), sink };
        let guard = self.tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.as_ref().ok_or(EngineError::Closed)?.send(job).map_err(|_| EngineError::Closed)?;
        Ok(cancel)
    }

    /// Generates to the end (blocking the calling thread).
    pub fn generate(&self, req: &Request) -> Result<Generation, EngineError> {
        let (tx, rx) = mpsc::channel();
        self.submit(
            req,
            Box::new(move |e| {
                if let Event::Done(r) = e {
                    let _ = tx.send(r);
                }
            }),
        )?;
        rx.recv().map_err(|_| EngineError::Closed)?
    }

    /// Stops taking requests, cancels the running ones and waits for the scheduler to finish.
    pub fn close(&self) {
        drop(self.tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
        if let Some(t) = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = t.join();
        }
    }
}

impl Drop for InferenceSession {
    fn drop(&mut self) {
        self.close();
    }
}

struct Live {
    slot: usize,
    seq: Sequence,
    ids: Vec<u32>,
    prefilled: usize,
    cancel: Arc<AtomicBool>,
    sink: Sink,
}

struct Scheduler {
    decoder: OrtDecoder,
    tok: Arc<Tokenizer>,
    eos: Vec<u32>,
    chunk: usize,
    rx: Receiver<Job>,
    queue: VecDeque<Job>,
    live: Vec<Live>,
}

impl Scheduler {
    fn run(mut self) {
        let mut open = true;
        loop {
            if open && self.live.is_empty() && self.queue.is_empty() {
                match self.rx.recv() {
                    Ok(j) => self.queue.push_back(j),
                    Err(_) => open = false,
                }
            }
            while open {
                match self.rx.try_recv() {
                    Ok(j) => self.queue.push_back(j),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => open = false,
                }
            }
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
            self.prefill_one();
            self.decode_step();
        }
    }

    fn admit(&mut self) {
        while self.live.len() < self.decoder.slots() {
            let Some(mut job) = self.queue.pop_front() else { return };
            if job.cancel.load(Ordering::Relaxed) {
                let seq = Sequence::new(&job.ids, job.params.clone(), &self.eos, self.decoder.context_len());
                let done = seq.map_err(EngineError::from).map(|mut s| {
                    let _ = s.cancel(&self.tok);
                    s.generation()
                });
                (job.sink)(Event::Done(done));
                continue;
            }
            let slot = (0..self.decoder.slots()).find(|s| !self.live.iter().any(|l| l.slot == *s)).expect("a free slot");
            match Sequence::new(&job.ids, job.params.clone(), &self.eos, self.decoder.context_len()) {
                Ok(seq) => {
                    self.decoder.release(slot);
                    self.live.push(Live { slot, seq, ids: job.ids, prefilled: 0, cancel: job.cancel, sink: job.sink });
                }
                Err(e) => (job.sink)(Event::Done(Err(e.into()))),
            }
        }
    }

    fn finish(&mut self, i: usize, result: Result<Generation, EngineError>) {
        let mut l = self.live.swap_remove(i);
        self.decoder.release(l.slot);
        (l.sink)(Event::Done(result));
    }

    fn reap_cancelled(&mut self) {
        let mut i = 0;
        while i < self.live.len() {
            if self.live[i].cancel.load(Ordering::Relaxed) {
                let l = &mut self.live[i];
                let r = l.seq.cancel(&self.tok).map_err(EngineError::from).map(|step| {
                    (l.sink)(Event::Step { step, logprob: None, top: Vec::new() });
                    l.seq.generation()
                });
                self.finish(i, r);
            } else {
                i += 1;
            }
        }
    }

    /// Feeds `logits` to live `i`; emits the step and finishes it when done.
    fn accept(&mut self, i: usize, logits: &[f32]) -> bool {
        let l = &mut self.live[i];
        match l.seq.accept(logits, &self.tok) {
            Ok(step) => {
                // `Sequence` exposes the chosen token's log-probability only through
                // `generation()` (a clone of the whole record so far).
                let (logprob, top) = if step.token.is_some() {
                    let g = l.seq.generation();
                    (g.logprobs.last().copied(), g.top_logprobs.last().cloned().unwrap_or_default())
                } else {
                    (None, Vec::new())
                };
                (l.sink)(Event::Step { step, logprob, top });
                if l.seq.is_finished() {
                    let g = l.seq.generation();
                    self.finish(i, Ok(g));
                    return true;
                }
                false
            }
            Err(e) => {
                self.finish(i, Err(e.into()));
                true
            }
        }
    }

    /// One prompt chunk for the oldest request still prefilling.
    fn prefill_one(&mut self) {
        let Some(i) = self.live.iter().position(|l| l.prefilled < l.ids.len()) else { return };
        let l = &mut self.live[i];
        let end = (l.prefilled + self.chunk).min(l.ids.len());
        match self.decoder.prefill(l.slot, &l.ids[l.prefilled..end]) {
            Ok(logits) => {
                l.prefilled = end;
                if end == l.ids.len() {
                    self.accept(i, &logits);
                }
            }
            Err(e) => self.finish(i, Err(EngineError::generate(&e))),
        }
    }

    /// One token for every request past its prompt, in one `step`.
    fn decode_step(&mut self) {
        let rows: Vec<usize> = (0..self.live.len()).filter(|&i| self.live[i].prefilled == self.live[i].ids.len()).collect();
        let batch: Vec<(usize, u32)> = rows.iter().filter_map(|&i| self.live[i].seq.next_input().map(|t| (self.live[i].slot, t))).collect();
        if batch.is_empty() {
            return;
        }
        match self.decoder.step(&batch) {
            Ok(logits) => {
                let v = self.decoder.vocab_size();
                // Finishing swap-removes, so walk the slots, not the indices.
                for (r, &(slot, _)) in batch.iter().enumerate() {
                    if let Some(i) = self.live.iter().position(|l| l.slot == slot) {
                        self.accept(i, &logits[r * v..(r + 1) * v]);
                    }
                }
            }
            Err(e) => {
                for &(slot, _) in batch.iter().rev() {
                    if let Some(i) = self.live.iter().position(|l| l.slot == slot) {
                        self.finish(i, Err(EngineError::generate(&e)));
                    }
                }
            }
        }
    }
}
