//! The Rust checker against the shared record-schema fixture (`test/fixtures/records/
//! schema-cases.json`), which vitest also runs against the TypeScript checker
//! (`test/unit/dataset-record-schema.test.ts`): a rule that drifts on one side fails one of them.
use std::path::PathBuf;

use serde_json::{Value, json};
use tinyforge_tokenizer::Tokenizer;
use tinyforge_train::data::{
    load_jsonl,
    record::{RecordKind, Severity, check_line},
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures")
}

fn fixture() -> Vec<Value> {
    let path = fixtures().join("records/schema-cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().expect("a cases array").clone()
}

/// The verdict in the fixture's own shape, so a mismatch prints both side by side.
fn verdict(line: &str, with_messages: bool) -> Value {
    let c = check_line(line);
    let problems: Vec<Value> = c
        .problems
        .iter()
        .map(|p| {
            let severity = if p.severity == Severity::Warning { "warning" } else { "error" };
            json!({ "code": p.code.as_str(), "field": p.field, "severity": severity })
        })
        .collect();
    let mut out = json!({ "kind": c.kind.map(RecordKind::as_str), "valid": c.record.is_some(), "problems": problems });
    if with_messages {
        out["messages"] = json!(c.record.and_then(|r| r.messages()));
    }
    out
}

#[test]
fn data_fixture_cases_get_their_verdicts() {
    let cases = fixture();
    assert!(cases.len() >= 50, "the fixture lost cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let line = match (&case["raw"], &case["record"]) {
            (Value::String(raw), _) => raw.clone(),
            (_, record) => record.to_string(),
        };
        let expect = &case["expect"];
        let got = verdict(&line, expect.get("messages").is_some());
        if &got != expect {
            failures.push(format!("{}\n  line:   {line}\n  expect: {expect}\n  got:    {got}", case["name"]));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn data_reasons_name_field_and_code_like_the_ts_tools() {
    let c = check_line(r#"{"input":"q","output":"  "}"#);
    assert_eq!(c.problems.iter().map(ToString::to_string).collect::<Vec<_>>(), ["output: \"output\" is empty [EMPTY]"]);
}

/// `file-level.jsonl` (written with printf; dataset-record-schema.test.ts reads it too): a BOM and
/// CRLF on line 1, a whitespace line and a U+00A0 line (blank: not records), a byte that is not
/// UTF-8 (decoded as U+FFFD, not a reason to reject the file) and a last line without a newline.
#[test]
fn data_file_level_rules_match_the_dataset_tools() {
    let tok = Tokenizer::from_file(fixtures().join("tokenizer/smollm2/tokenizer.json")).unwrap();
    let ds = load_jsonl(&fixtures().join("records/file-level.jsonl"), &tok, 512).unwrap();
    assert_eq!(ds.issues, []);
    assert_eq!((ds.stats.records, ds.stats.valid), (3, 3));
    assert_eq!(ds.examples.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 4, 5]);
    let text = tok.decode(&ds.examples[1].ids, false).unwrap();
    assert!(text.contains("a\u{fffd}2"), "{text}");
}
