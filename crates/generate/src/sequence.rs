//! One request's generation as a state machine the caller drives with logits: `Sequence::new`
//! checks the request against the context window, each `accept(logits)` samples a token and
//! returns the text it releases, until a finish reason is set. It never calls a model, so the
//! single-stream driver (`driver.rs`) and a batch scheduler drive it the same way.
use tinyforge_tokenizer::Tokenizer;

use crate::{
    detok::Detokenizer,
    error::{GenerateError, Result},
    sampling::{Sampler, SamplingParams, TokenLogprob},
    stop::StopStrings,
};

/// Most alternatives reported per token (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    pub sampling: SamplingParams,
    /// At least 1; generation also ends when the context window is full.
    pub max_tokens: usize,
    /// Generation ends when the text contains one of these; the text is cut before it.
    pub stop: Vec<String>,
    /// Alternatives reported with each chosen token (0 = none), at most `MAX_TOP_LOGPROBS`.
    pub top_logprobs: usize,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self { sampling: SamplingParams::default(), max_tokens: 128, stop: Vec::new(), top_logprobs: 0 }
    }
}

impl GenerateParams {
    pub fn validate(&self) -> Result<()> {
        self.sampling.validate()?;
        if self.max_tokens == 0 {
            return Err(GenerateError::invalid("maxTokens", "must be at least 1"));
        }
        if self.top_logprobs > MAX_TOP_LOGPROBS {
            return Err(GenerateError::invalid("topLogprobs", format!("must be at most {MAX_TOP_LOGPROBS}, got {}", self.top_logprobs)));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model chose an end-of-sequence token.
    Eos,
    /// `max_tokens` generated or the context window is full.
    Length,
    /// A stop string matched.
    Stop,
    /// The caller gave up (client gone, timeout, abort).
    Cancelled,
}

impl FinishReason {
    /// The name JS sees: "eos", "length", "stop", "cancelled".
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eos => "eos",
            Self::Length => "length",
            Self::Stop => "stop",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What one `accept` produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The generated token, `None` when an EOS ended the sequence (EOS is not output).
    pub token: Option<u32>,
    /// Model log-probability of `token` (`None` when no token was output).
    pub logprob: Option<f32>,
    /// The most likely alternatives at this position (`top_logprobs` of them; empty without a
    /// token).
    pub top_logprobs: Vec<TokenLogprob>,
    /// Text released by this step (may be empty).
    pub text: String,
    pub finish: Option<FinishReason>,
}

impl Step {
    fn done(finish: Option<FinishReason>, text: String) -> Self {
        Self { token: None, logprob: None, top_logprobs: Vec::new(), text, finish }
    }
}

/// A finished (or cancelled) generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The completion: special tokens left out, cut before a stop string.
    pub text: String,
    /// Generated ids (a closing EOS excluded; the tokens of a matched stop string included).
    pub tokens: Vec<u32>,
    /// Model log-probability of each generated token.
    pub logprobs: Vec<f32>,
    /// The most likely alternatives at each generated position (empty lists when not asked).
    pub top_logprobs: Vec<Vec<TokenLogprob>>,
    /// Model log-probability of the EOS that ended generation, if one did.
    pub eos_logprob: Option<f32>,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
}

impl Generation {
    /// `exp(mean log-probability)` of every choice made (the generated tokens and a closing
    /// EOS): the geometric mean of their probabilities, in (0, 1]; `None` when nothing was
    /// chosen.
    #[must_use]
    pub fn confidence(&self) -> Option<f64> {
        let all: Vec<f64> = self.logprobs.iter().chain(&self.eos_logprob).map(|&l| f64::from(l)).collect();
        #[allow(clippy::cast_precision_loss)] // token counts are far below 2^52
        (!all.is_empty()).then(|| (all.iter().sum::<f64>() / all.len() as f64).exp())
    }
}

#[derive(Debug, Clone)]
pub struct Sequence {
    params: GenerateParams,
    eos: Vec<u32>,
    prompt_tokens: usize,
    context_len: usize,
    sampler: Sampler,
    detok: Detokenizer,
    stops: StopStrings,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    top_logprobs: Vec<Vec<TokenLogprob>>,
    eos_logprob: Option<f32>,
    finish: Option<FinishReason>,
}

impl Sequence {
    /// A sequence after `prompt` (its ids, already built); `eos` ids end it; `context_len` is the
    /// decoder's window (prompt + generated).
    pub fn new(prompt: &[u32], params: GenerateParams, eos: &[u32], context_len: usize) -> Result<Self> {
        params.validate()?;
        if prompt.is_empty() {
            return Err(GenerateError::invalid("prompt", "has no tokens"));
        }
        if prompt.len() >= context_len {
            return Err(GenerateError::PromptTooLong { prompt_tokens: prompt.len(), context_len });
        }
        Ok(Self {
            sampler: Sampler::new(params.sampling.clone(), prompt)?,
            stops: StopStrings::new(&params.stop),
            params,
            eos: eos.to_vec(),
            prompt_tokens: prompt.len(),
            context_len,
            detok: Detokenizer::new(),
            tokens: Vec::new(),
            logprobs: Vec::new(),
            top_logprobs: Vec::new(),
            eos_logprob: None,
            finish: None,
        })
    }

    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish
    }

    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The token the decoder must be stepped with next (the last one chosen), or `None` when
    /// finished.
    pub fn next_input(&self) -> Option<u32> {
        if self.finish.is_some() { None } else { self.tokens.last().copied() }
    }

    /// Samples the next token from the logits at the last position and advances: records its
    /// log-probability, releases text, and sets the finish reason (EOS, stop string, max_tokens
    /// or a full context window).
    pub fn accept(&mut self, logits: &[f32], tok: &Tokenizer) -> Result<Step> {
        if let Some(reason) = self.finish {
            return Ok(Step::done(Some(reason), String::new()));
        }
        if logits.is_empty() {
            return Err(GenerateError::invalid("logits", "the decoder returned an empty row"));
        }
        let choice = self.sampler.sample(logits, self.params.top_logprobs);
        if self.eos.contains(&choice.token) {
            self.eos_logprob = Some(choice.logprob);
            return self.end(FinishReason::Eos, String::new(), tok);
        }
        self.sampler.observe(choice.token);
        self.tokens.push(choice.token);
        self.logprobs.push(choice.logprob);
        self.top_logprobs.push(choice.top.clone());
        let delta = self.detok.push(tok, choice.token)?;
        let released = self.stops.push(&delta);
        let mut step = if released.stopped {
            self.finish = Some(FinishReason::Stop);
            Step::done(self.finish, released.text)
        } else if self.tokens.len() >= self.params.max_tokens || self.prompt_tokens + self.tokens.len() >= self.context_len {
            self.end(FinishReason::Length, released.text, tok)?
        } else {
            Step::done(None, released.text)
        };
        (step.token, step.logprob, step.top_logprobs) = (Some(choice.token), Some(choice.logprob), choice.top);
        Ok(step)
    }

    /// Ends the sequence early; the held-back text is released in the returned step.
    pub fn cancel(&mut self, tok: &Tokenizer) -> Result<Step> {
        if self.finish.is_some() {
            return Ok(Step::done(self.finish, String::new()));
        }
        self.end(FinishReason::Cancelled, String::new(), tok)
    }

    /// Sets `reason` and releases every character still held back.
    fn end(&mut self, reason: FinishReason, mut text: String, tok: &Tokenizer) -> Result<Step> {
        let rest = self.detok.flush(tok)?;
        let released = self.stops.push(&rest);
        text += &released.text;
        if released.stopped {
            self.finish = Some(FinishReason::Stop);
        } else {
            text += &self.stops.flush();
            self.finish = Some(reason);
        }
        Ok(Step::done(self.finish, text))
    }

    /// The result, consuming the sequence (no copy of the record).
    pub fn into_generation(self) -> Generation {
        Generation {
            text: self.stops.text().to_string(),
            finish_reason: self.finish.unwrap_or(FinishReason::Cancelled),
            tokens: self.tokens,
            logprobs: self.logprobs,
            top_logprobs: self.top_logprobs,
            eos_logprob: self.eos_logprob,
            prompt_tokens: self.prompt_tokens,
        }
    }

    /// The result so far, copied (call once finished; an unfinished sequence reports
    /// `Cancelled`).
    pub fn generation(&self) -> Generation {
        Generation {
            text: self.stops.text().to_string(),
            tokens: self.tokens.clone(),
            logprobs: self.logprobs.clone(),
            top_logprobs: self.top_logprobs.clone(),
            eos_logprob: self.eos_logprob,
            finish_reason: self.finish.unwrap_or(FinishReason::Cancelled),
            prompt_tokens: self.prompt_tokens,
        }
    }
}
