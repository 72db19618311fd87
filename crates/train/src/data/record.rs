//! The record schema, checked once per JSONL line. The rules are written in `ts/dataset/README.md`
//! ("The record schema"); `ts/dataset/check-record.ts` implements the same rules for the dataset
//! tools, and both are pinned to `test/fixtures/records/schema-cases.json` (tests/record_schema.rs
//! here, test/unit/dataset-record-schema.test.ts there), so a rule changed on one side only fails
//! a test.
//!
//! A record is one of three kinds, told apart by which keys are present: `pair`
//! (`{"input","output"}`, optional `"system"`), `chat` (`{"messages":[{"role","content"}...]}`) or
//! `text` (`{"text"}`). Problems are data with a code, a JSON path and a severity: errors make the
//! record unusable, warnings do not.
use std::fmt;

use serde_json::{Map, Value};
use tinyforge_tokenizer::ChatMessage;

/// The three record kinds; `as_str` is the name every tool prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Pair,
    Chat,
    Text,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pair => "pair",
            Self::Chat => "chat",
            Self::Text => "text",
        }
    }
}

/// Roles a chat message may have (matched exactly, case included).
pub const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// The per-record problem codes, spelled as the TypeScript validator spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemCode {
    BadJson,
    NotAnObject,
    UnknownSchema,
    AmbiguousSchema,
    MissingField,
    WrongType,
    Empty,
    UnknownRole,
    NoAssistant,
    UnknownField,
}

impl ProblemCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "BAD_JSON",
            Self::NotAnObject => "NOT_AN_OBJECT",
            Self::UnknownSchema => "UNKNOWN_SCHEMA",
            Self::AmbiguousSchema => "AMBIGUOUS_SCHEMA",
            Self::MissingField => "MISSING_FIELD",
            Self::WrongType => "WRONG_TYPE",
            Self::Empty => "EMPTY",
            Self::UnknownRole => "UNKNOWN_ROLE",
            Self::NoAssistant => "NO_ASSISTANT",
            Self::UnknownField => "UNKNOWN_FIELD",
        }
    }
}

/// One problem of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: ProblemCode,
    /// JSON path of the field (`output`, `messages[2].role`), empty for the whole record.
    pub field: String,
    pub reason: String,
    pub severity: Severity,
}

impl Problem {
    fn error(code: ProblemCode, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { code, field: field.into(), reason: reason.into(), severity: Severity::Error }
    }

    fn warning(code: ProblemCode, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { code, field: field.into(), reason: reason.into(), severity: Severity::Warning }
    }
}

/// `field: reason [CODE]`, what `formatProblem` prints after `file:line:` on the TypeScript side.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        let warning = if self.severity == Severity::Warning { ", warning" } else { "" };
        write!(f, "{} [{}{warning}]", self.reason, self.code.as_str())
    }
}

/// A record whose shape is right, reduced to the fields training reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `system` is `None` when absent or blank.
    Pair {
        system: Option<String>,
        input: String,
        output: String,
    },
    Chat(Vec<ChatMessage>),
    Text(String),
}

impl Record {
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::Pair { .. } => RecordKind::Pair,
            Self::Chat(_) => RecordKind::Chat,
            Self::Text(_) => RecordKind::Text,
        }
    }

    /// The chat the record becomes for the chat template; `None` for text records.
    pub fn messages(&self) -> Option<Vec<ChatMessage>> {
        match self {
            Self::Pair { system, input, output } => {
                let mut out = Vec::with_capacity(3);
                if let Some(system) = system {
                    out.push(ChatMessage::new("system", system));
                }
                out.push(ChatMessage::new("user", input));
                out.push(ChatMessage::new("assistant", output));
                Some(out)
            }
            Self::Chat(messages) => Some(messages.clone()),
            Self::Text(_) => None,
        }
    }
}

/// The verdict on one line: its kind when the keys say which, the record when it has no error,
/// and every problem in the order the schema lists the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub kind: Option<RecordKind>,
    pub record: Option<Record>,
    pub problems: Vec<Problem>,
}

impl Checked {
    fn rejected(problem: Problem) -> Self {
        Self { kind: None, record: None, problems: vec![problem] }
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }
}

/// Blank means every character is Unicode `White_Space` (so U+00A0 and U+0085 are blank, the BOM
/// U+FEFF is not): the TypeScript side tests `/^\p{White_Space}*$/u`, which is the same set.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// Checks one JSONL line (without its line end).
pub fn check_line(line: &str) -> Checked {
    match serde_json::from_str::<Value>(line) {
        Ok(value) => check_value(&value),
        Err(e) => Checked::rejected(Problem::error(ProblemCode::BadJson, "", format!("not valid JSON: {e}"))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks one parsed JSON value as a record.
pub fn check_value(value: &Value) -> Checked {
    let Some(obj) = value.as_object() else {
        return Checked::rejected(Problem::error(
            ProblemCode::NotAnObject,
            "",
            format!("a record must be a JSON object, got {}", type_name(value)),
        ));
    };
    // Presence decides the kind, whatever the value (`"messages": null` still claims `chat`).
    let mut kinds = Vec::new();
    if obj.contains_key("input") || obj.contains_key("output") {
        kinds.push(RecordKind::Pair);
    }
    if obj.contains_key("messages") {
        kinds.push(RecordKind::Chat);
    }
    if obj.contains_key("text") {
        kinds.push(RecordKind::Text);
    }
    let kind = match kinds.as_slice() {
        [] => {
            return Checked::rejected(Problem::error(
                ProblemCode::UnknownSchema,
                "",
                "expected \"input\"+\"output\", \"messages\" or \"text\"",
            ));
        }
        [kind] => *kind,
        _ => {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            return Checked::rejected(Problem::error(
                ProblemCode::AmbiguousSchema,
                "",
                format!("record mixes the {} schemas; use exactly one", names.join(" and ")),
            ));
        }
    };
    let mut problems = Vec::new();
    let record = match kind {
        RecordKind::Pair => check_pair(obj, &mut problems),
        RecordKind::Chat => check_messages(&obj["messages"], &mut problems).map(Record::Chat),
        RecordKind::Text => required_string(obj, "text", "text", Severity::Error, &mut problems).map(|t| Record::Text(t.to_owned())),
    };
    let known: &[&str] = match kind {
        RecordKind::Pair => &["input", "output", "system"],
        RecordKind::Chat => &["messages"],
        RecordKind::Text => &["text"],
    };
    unknown_fields(obj, known, "", &mut problems);
    let ok = !problems.iter().any(|p| p.severity == Severity::Error);
    Checked { kind: Some(kind), record: record.filter(|_| ok), problems }
}

fn check_pair(obj: &Map<String, Value>, out: &mut Vec<Problem>) -> Option<Record> {
    // An empty input is unusual but legal (a fixed prompt); an empty output teaches nothing.
    let input = required_string(obj, "input", "input", Severity::Warning, out);
    let output = required_string(obj, "output", "output", Severity::Error, out);
    let system = match obj.get("system") {
        None => Some(None),
        Some(Value::String(s)) if is_blank(s) => {
            out.push(Problem::warning(
                ProblemCode::Empty,
                "system",
                "\"system\" is blank and is left out (the template's default applies)",
            ));
            Some(None)
        }
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(v) => {
            out.push(Problem::error(ProblemCode::WrongType, "system", format!("\"system\" must be a string, got {}", type_name(v))));
            None
        }
    };
    Some(Record::Pair { system: system?, input: input?.to_owned(), output: output?.to_owned() })
}

/// A string field that must be present; a blank one is an `EMPTY` problem of `blank` severity.
fn required_string<'a>(obj: &'a Map<String, Value>, key: &str, field: &str, blank: Severity, out: &mut Vec<Problem>) -> Option<&'a str> {
    match obj.get(key) {
        None => {
            out.push(Problem::error(ProblemCode::MissingField, field, format!("\"{key}\" is missing")));
            None
        }
        Some(Value::String(s)) => {
            if is_blank(s) {
                out.push(Problem { code: ProblemCode::Empty, field: field.into(), reason: format!("\"{key}\" is empty"), severity: blank });
            }
            Some(s)
        }
        Some(v) => {
            out.push(Problem::error(ProblemCode::WrongType, field, format!("\"{key}\" must be a string, got {}", type_name(v))));
            None
        }
    }
}

fn check_messages(value: &Value, out: &mut Vec<Problem>) -> Option<Vec<ChatMessage>> {
    let Some(list) = value.as_array() else {
        out.push(Problem::error(ProblemCode::WrongType, "messages", format!("\"messages\" must be an array, got {}", type_name(value))));
        return None;
    };
    if list.is_empty() {
        out.push(Problem::error(ProblemCode::Empty, "messages", "\"messages\" is empty"));
        return None;
    }
    let mut messages = Vec::with_capacity(list.len());
    let (mut assistant, mut role_problem) = (false, false);
    for (i, m) in list.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Some(msg) = m.as_object() else {
            out.push(Problem::error(ProblemCode::WrongType, at, format!("a message must be an object, got {}", type_name(m))));
            continue;
        };
        let role_field = format!("{at}.role");
        let role = match msg.get("role") {
            None => {
                out.push(Problem::error(ProblemCode::MissingField, role_field, "\"role\" is missing"));
                None
            }
            Some(Value::String(r)) if ROLES.contains(&r.as_str()) => Some(r.as_str()),
            Some(Value::String(r)) => {
                out.push(Problem::error(
                    ProblemCode::UnknownRole,
                    role_field,
                    format!("unknown role \"{r}\" (expected {})", ROLES.join(", ")),
                ));
                None
            }
            Some(v) => {
                out.push(Problem::error(ProblemCode::WrongType, role_field, format!("\"role\" must be a string, got {}", type_name(v))));
                None
            }
        };
        role_problem |= role.is_none();
        assistant |= role == Some("assistant");
        // Only the reply must say something: a blank prompt turn is legal (warned), as in pairs.
        let blank = if role == Some("assistant") { Severity::Error } else { Severity::Warning };
        let content = required_string(msg, "content", &format!("{at}.content"), blank, out);
        unknown_fields(msg, &["role", "content"], &format!("{at}."), out);
        if let (Some(role), Some(content)) = (role, content) {
            messages.push(ChatMessage::new(role, content));
        }
    }
    // A chat whose roles are wrong gets that error, not a second one about the assistant.
    if !assistant && !role_problem {
        out.push(Problem::error(ProblemCode::NoAssistant, "messages", "no \"assistant\" message: nothing to learn from this chat"));
    }
    (messages.len() == list.len()).then_some(messages)
}

/// Keys outside the schema are ignored with a warning, in sorted order; keys starting with `_`
/// (`_source` provenance and the like) are metadata and ignored silently.
fn unknown_fields(obj: &Map<String, Value>, known: &[&str], prefix: &str, out: &mut Vec<Problem>) {
    let mut unknown: Vec<&String> = obj.keys().filter(|k| !k.starts_with('_') && !known.contains(&k.as_str())).collect();
    unknown.sort();
    for key in unknown {
        out.push(Problem::warning(
            ProblemCode::UnknownField,
            format!("{prefix}{key}"),
            format!("\"{key}\" is not part of the schema and is ignored"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_format_problem() {
        let c = check_line(r#"{"input":"q","score":1}"#);
        let shown: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "output: \"output\" is missing [MISSING_FIELD]",
                "score: \"score\" is not part of the schema and is ignored [UNKNOWN_FIELD, warning]"
            ]
        );
    }

    #[test]
    fn blank_is_unicode_white_space() {
        assert!(is_blank(" \t\n\u{a0}\u{85}\u{3000}"));
        assert!(!is_blank("\u{feff}"));
    }
}
