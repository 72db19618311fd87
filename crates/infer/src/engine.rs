//! `InferenceSession`: an export folder served by one scheduler thread (`scheduler.rs`) that
//! owns the `OrtDecoder` and runs continuous batching over its slots. Requests join at the next
//! step boundary (a free slot), new prompts are prefilled together in chunks between decode
//! steps (so prompts never stall the running streams for long), they leave when finished, and
//! a cancelled request frees its slot at the next step.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tinyforge_generate::{CodedError, GenerateParams, Generation, Prompt, Sequence, Step, TokenLogprob, build_prompt, eos_ids};
use tinyforge_tokenizer::Tokenizer;

use crate::decoder::{DecoderOptions, KvMode, OrtDecoder, Spinning};
use crate::error::InferError;
use crate::folder::ExportFolder;
use crate::scheduler::{Job, Scheduler};

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// ORT intra-op threads; `None` = ORT's default (one per core).
    pub threads: Option<usize>,
    pub spinning: Spinning,
    /// Requests generating at once; more wait in a queue.
    pub slots: usize,
    /// Positions per slot; `None` = `max_position_embeddings` capped at 4096 (each slot
    /// preallocates its cache: SmolLM2-135M needs 46 KB per position).
    pub context_len: Option<usize>,
    /// Prompt tokens per prefill chunk (a longer prompt takes one chunk per loop turn).
    pub prefill_chunk: usize,
    /// Prompt tokens (padded) prefilled per loop turn, between two decode steps, over one or
    /// more forwards (the oldest waiting chunk always goes; 1 = one forward per turn): bounds how
    /// long prefill stalls the running streams (~0.4 s for 256 at SmolLM2 int8's ~660 tok/s
    /// prefill on 2 idle Xeon cores) while prompts arriving together all start at once. A turn
    /// that begins with no stream decoding has no stall to bound and prefills every waiting prompt.
    pub prefill_budget: usize,
    /// The graph as exported, logits for every position (`DecoderOptions::all_logits`; A/B only).
    pub all_logits: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            threads: None,
            spinning: Spinning::DuringRuns,
            slots: 8,
            context_len: None,
            prefill_chunk: 128,
            prefill_budget: 256,
            all_logits: false,
        }
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

    pub(crate) fn generate(e: &impl CodedError) -> Self {
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
        let dopts = DecoderOptions {
            slots: opts.slots,
            context_len,
            threads: opts.threads,
            spinning: opts.spinning,
            kv: KvMode::Auto,
            all_logits: opts.all_logits,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<bool, InferError>>();
        let (tok_tx, tok_rx) = mpsc::channel::<(Arc<Tokenizer>, Vec<u32>)>();
        let (path, shape, chunk) = (folder.model_path.clone(), folder.shape, opts.prefill_chunk);
        let budget = opts.prefill_budget;
        // The session and its IoBindings stay on this thread for their whole life.
        let thread = std::thread::Builder::new()
            .name("tinyforge-infer".into())
            .spawn(move || match OrtDecoder::load(&path, shape, &dopts) {
                Ok(d) => {
                    let _ = ready_tx.send(Ok(d.kv_mode() == KvMode::Shared));
                    // Nothing comes when the tokenizer failed: `load` returns that error, this thread ends.
                    if let Ok((tok, eos2)) = tok_rx.recv() {
                        Scheduler::new(d, tok, eos2, chunk, budget, rx).run();
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
