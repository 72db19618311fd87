//! JSONL records → token ids + labels, formatted with the base model's chat template.
//!
//! Each line is checked against the record schema first (`record`: the kinds `pair`, `chat` and
//! `text`, the rules in `ts/dataset/README.md`); a record with an error is reported with its line
//! and the problems as `field: reason [CODE]`. A pair becomes a chat (its `system`, if any, the
//! first message). Chat records are rendered once in full; the byte span of every assistant turn
//! is found by rendering the conversation up to that turn with `add_generation_prompt = true`
//! (where the reply starts) and including it (where the reply and its end-of-turn token stop), so
//! only tokens inside those spans are labelled — every assistant turn of a multi-turn chat, never
//! the prompt. `{"text"}` records train on every token.
use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tinyforge_tokenizer::{ChatMessage, ChatOptions, Tokenizer};

use crate::error::{RecordIssue, Result, TrainError};

pub mod record;

use record::{Record, check_line};

/// One tokenized record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub ids: Vec<u32>,
    /// `labels[j]`: token `j` is predicted (trained on) from the tokens before it.
    pub labels: Vec<bool>,
    /// 1-based line of the record in its file.
    pub line: usize,
}

impl Example {
    pub fn label_count(&self) -> usize {
        self.labels.iter().skip(1).filter(|&&l| l).count()
    }
}

/// Token statistics a dry run prints.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataStats {
    pub records: usize,
    pub valid: usize,
    pub invalid: usize,
    /// Records cut at `max_seq_len` (they still train on what is left).
    pub truncated: usize,
    /// Records whose response was entirely beyond `max_seq_len` (dropped).
    pub dropped_no_labels: usize,
    pub tokens: usize,
    pub label_tokens: usize,
    pub min_len: usize,
    pub max_len: usize,
    pub mean_len: f64,
}

/// A file's examples, its problems and its digest.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub sha256: String,
    pub examples: Vec<Example>,
    pub issues: Vec<RecordIssue>,
    pub stats: DataStats,
}

/// Reads and tokenizes a JSONL file. Bad records go to `issues`; the caller decides whether
/// they are fatal (`skip_invalid`).
pub fn load_jsonl(path: &Path, tok: &Tokenizer, max_seq_len: usize) -> Result<Dataset> {
    let read_err = |e: &dyn std::fmt::Display| TrainError::DataRead { path: path.to_path_buf(), reason: e.to_string() };
    let file = std::fs::File::open(path).map_err(|e| read_err(&e))?;
    let mut hasher = Sha256::new();
    let mut reader = BufReader::new(HashingReader { inner: file, hasher: &mut hasher });
    let (mut examples, mut issues) = (Vec::new(), Vec::new());
    let mut stats = DataStats::default();
    let mut bytes = Vec::new();
    let mut line_no = 0;
    loop {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes).map_err(|e| read_err(&e))? == 0 {
            break;
        }
        line_no += 1;
        // Bytes that are not UTF-8 become U+FFFD, as the dataset tools' decoder (Node's
        // StringDecoder) makes them: both replace each maximal invalid subpart, so both sides see
        // the same text instead of one rejecting the whole file.
        let decoded = String::from_utf8_lossy(&bytes);
        let line: &str = &decoded;
        // A UTF-8 BOM on the first line is an editor's artefact, not data (the TS reader agrees).
        let text = if line_no == 1 { line.strip_prefix('\u{feff}').unwrap_or(line) } else { line };
        if record::is_blank(text) {
            continue;
        }
        stats.records += 1;
        let issue = |reason: String| RecordIssue { file: path.to_path_buf(), line: line_no, reason };
        match encode_line(text.trim_end_matches(['\n', '\r']), tok) {
            Err(reason) => issues.push(issue(reason)),
            Ok((mut ids, mut labels)) => {
                if ids.len() > max_seq_len {
                    stats.truncated += 1;
                    ids.truncate(max_seq_len);
                    labels.truncate(max_seq_len);
                }
                let ex = Example { ids, labels, line: line_no };
                if ex.label_count() == 0 {
                    stats.dropped_no_labels += 1;
                    continue;
                }
                examples.push(ex);
            }
        }
    }
    drop(reader);
    stats.valid = examples.len();
    stats.invalid = issues.len();
    fill_length_stats(&mut stats, &examples);
    Ok(Dataset { path: path.to_path_buf(), sha256: hex(&hasher.finalize()), examples, issues, stats })
}

pub(crate) fn fill_length_stats(stats: &mut DataStats, examples: &[Example]) {
    stats.tokens = examples.iter().map(|e| e.ids.len()).sum();
    stats.label_tokens = examples.iter().map(Example::label_count).sum();
    stats.min_len = examples.iter().map(|e| e.ids.len()).min().unwrap_or(0);
    stats.max_len = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    stats.mean_len = if examples.is_empty() { 0.0 } else { stats.tokens as f64 / examples.len() as f64 };
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}"); // writing into a String cannot fail
        s
    })
}

/// Hashes exactly the bytes the dataset was read from.
struct HashingReader<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// One JSONL line → (ids, labels), or the reason it is rejected: its errors as
/// `field: reason [CODE]`, joined by `; ` (warnings do not reject a record and are not returned).
pub fn encode_line(line: &str, tok: &Tokenizer) -> std::result::Result<(Vec<u32>, Vec<bool>), String> {
    let checked = check_line(line);
    let Some(record) = checked.record else {
        return Err(checked.errors().map(ToString::to_string).collect::<Vec<_>>().join("; "));
    };
    match record {
        Record::Text(text) => {
            let mut ids = tok.encode(&text, true).map_err(|e| e.to_string())?;
            if let Some(eos) = tok.special_tokens().eos {
                ids.push(eos);
            }
            let labels = vec![true; ids.len()];
            Ok((ids, labels))
        }
        chat => encode_chat(&chat.messages().expect("pairs and chats have messages"), tok),
    }
}

/// The chat's last assistant turn as eval loss scores it (`foremforge eval`): the ids of the whole
/// rendered chat and labels on that turn only, the prompt before it given as context. The labels
/// are the trainer's own (`encode_chat`) with every assistant run but the last cleared, so eval
/// and training count the same tokens (the reply and its end-of-turn marker). Errs when the chat
/// does not end with an assistant turn.
pub fn encode_answer(messages: &[ChatMessage], tok: &Tokenizer) -> std::result::Result<(Vec<u32>, Vec<bool>), String> {
    if messages.last().is_none_or(|m| m.role != "assistant") {
        return Err("the chat must end with an assistant turn (the answer to score)".into());
    }
    let (ids, mut labels) = encode_chat(messages, tok)?;
    // Assistant turns are separated by unlabelled prompt tokens, so the last run of labels is the
    // last turn (two assistant turns in a row, with nothing between, stay one run).
    let last = labels.iter().rposition(|&l| l).ok_or("the answer renders to no tokens")?;
    let start = labels[..last].iter().rposition(|&l| !l).map_or(0, |i| i + 1);
    labels[..start].fill(false);
    Ok((ids, labels))
}

/// Renders the chat and labels the tokens inside each assistant turn's byte span.
fn encode_chat(messages: &[ChatMessage], tok: &Tokenizer) -> std::result::Result<(Vec<u32>, Vec<bool>), String> {
    let render = |msgs: &[ChatMessage], generation: bool| {
        tok.apply_chat_template(msgs, &ChatOptions { add_generation_prompt: generation, tools: None }).map_err(|e| e.to_string())
    };
    let full = render(messages, false)?;
    let mut spans = Vec::new();
    for (k, m) in messages.iter().enumerate() {
        if m.role != "assistant" {
            continue;
        }
        let prompt = render(&messages[..k], true)?;
        let upto = render(&messages[..=k], false)?;
        if !full.starts_with(&prompt) || !full.starts_with(&upto) || upto.len() < prompt.len() {
            return Err(format!(
                "the chat template does not render message {k} as a prefix of the conversation, so the reply cannot be located"
            ));
        }
        spans.push(prompt.len()..upto.len());
    }
    let enc = tok.encode_with_offsets(&full, false).map_err(|e| e.to_string())?;
    let labels = enc.offsets.iter().map(|&(start, _)| spans.iter().any(|s| s.contains(&start))).collect();
    Ok((enc.ids, labels))
}
