//! Chat templates rendered with minijinja the way Hugging Face transformers renders them with
//! Jinja2 (`PreTrainedTokenizerBase.apply_chat_template`): `trim_blocks` and `lstrip_blocks` on,
//! loop controls, Python string methods (minijinja-contrib's pycompat), a `tojson` that writes
//! what Python's `json.dumps(..., ensure_ascii=False)` writes, and the globals `raise_exception`
//! and `strftime_now`. Variables: `messages`, `add_generation_prompt`, `tools`, plus the special
//! tokens (`bos_token`, `eos_token`, `unk_token`, `pad_token`).
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, context};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TokenizerError};

/// One chat turn: `role` is `system`, `user`, `assistant` (or whatever the template knows).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ChatOptions {
    /// Append the header that starts the assistant's turn.
    pub add_generation_prompt: bool,
    /// Tool schemas as the template expects them (JSON), or `None`.
    pub tools: Option<serde_json::Value>,
}

/// Special token strings a template may print.
#[derive(Debug, Clone, Default)]
pub(crate) struct TemplateTokens {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub unk: Option<String>,
    pub pad: Option<String>,
}

pub(crate) fn render(source: &str, messages: &[ChatMessage], options: &ChatOptions, tokens: &TemplateTokens) -> Result<String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("tojson", tojson);
    env.add_function("raise_exception", |message: String| -> std::result::Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, message))
    });
    env.add_function("strftime_now", |format: String| strftime(&format, unix_now()));
    env.add_template("chat", source).map_err(|e| TokenizerError::ChatTemplate(describe(&e)))?;
    let template = env.get_template("chat").map_err(|e| TokenizerError::ChatTemplate(describe(&e)))?;
    let tools = options.tools.as_ref().map_or(Value::from(()), Value::from_serialize);
    let opt = |s: &Option<String>| s.as_ref().map_or(Value::from(()), |t| Value::from(t.as_str()));
    template
        .render(context! {
            messages => Value::from_serialize(messages),
            add_generation_prompt => options.add_generation_prompt,
            tools => tools,
            bos_token => opt(&tokens.bos),
            eos_token => opt(&tokens.eos),
            unk_token => opt(&tokens.unk),
            pad_token => opt(&tokens.pad),
        })
        .map_err(|e| TokenizerError::ChatTemplate(describe(&e)))
}

/// minijinja's message plus the template line, when known.
fn describe(e: &Error) -> String {
    match e.line() {
        Some(line) => format!("{e} (template line {line})"),
        None => e.to_string(),
    }
}

/// Python's `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = match separators.as_deref() {
        Some([item, key]) => (item.clone(), key.clone()),
        Some(_) => return Err(Error::new(ErrorKind::InvalidOperation, "tojson separators must be two strings")),
        None if indent.is_some() => (",".into(), ": ".into()),
        None => (", ".into(), ": ".into()),
    };
    let style = JsonStyle { indent, item_sep, key_sep, ensure_ascii: ensure_ascii.unwrap_or(false), sort_keys: sort_keys.unwrap_or(false) };
    let mut out = String::new();
    style.write(&mut out, value, 0)?;
    Ok(Value::from_safe_string(out))
}

struct JsonStyle {
    indent: Option<usize>,
    item_sep: String,
    key_sep: String,
    ensure_ascii: bool,
    sort_keys: bool,
}

impl JsonStyle {
    fn newline(&self, out: &mut String, level: usize) {
        if let Some(n) = self.indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', n * level));
        }
    }

    fn write(&self, out: &mut String, v: &Value, level: usize) -> std::result::Result<(), Error> {
        match v.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if v.is_integer() {
                    let _ = write!(out, "{}", i128::try_from(v.clone())?);
                } else {
                    let f = f64::try_from(v.clone())?;
                    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
                        let _ = write!(out, "{f:.1}");
                    } else {
                        let _ = write!(out, "{f}");
                    }
                }
            }
            ValueKind::String => self.string(out, v.as_str().unwrap_or_default()),
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if self.sort_keys {
                    keys.sort();
                }
                if keys.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                out.push('{');
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(out, level + 1);
                    match key.as_str() {
                        Some(k) => self.string(out, k),
                        None => self.string(out, &key.to_string()),
                    }
                    out.push_str(&self.key_sep);
                    self.write(out, &v.get_item(key)?, level + 1)?;
                }
                self.newline(out, level);
                out.push('}');
            }
            _ => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(out, level + 1);
                    self.write(out, item, level + 1)?;
                }
                self.newline(out, level);
                out.push(']');
            }
        }
        Ok(())
    }

    fn string(&self, out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && (c as u32) > 0x7e) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        let _ = write!(out, "\\u{u:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A `strftime` for the fields chat templates use (dates in system prompts), in UTC.
fn strftime(format: &str, unix: i64) -> String {
    const MONTHS: [&str; 12] =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    const DAYS: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{year}"),
            Some('y') => write!(out, "{:02}", year % 100),
            Some('m') => write!(out, "{month:02}"),
            Some('d') => write!(out, "{day:02}"),
            Some('-') if chars.clone().next() == Some('d') => {
                chars.next();
                write!(out, "{day}")
            }
            Some('B') => write!(out, "{month_name}"),
            Some('b') => write!(out, "{}", &month_name[..3]),
            Some('A') => write!(out, "{weekday}"),
            Some('a') => write!(out, "{}", &weekday[..3]),
            Some('H') => write!(out, "{:02}", secs / 3600),
            Some('M') => write!(out, "{:02}", secs / 60 % 60),
            Some('S') => write!(out, "{:02}", secs % 60),
            Some('%') | None => write!(out, "%"),
            Some(other) => write!(out, "%{other}"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_chatml() {
        let msgs = [ChatMessage::new("user", "Hi")];
        let opts = ChatOptions { add_generation_prompt: true, tools: None };
        let out = render(CHATML, &msgs, &opts, &TemplateTokens::default()).unwrap();
        assert_eq!(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn raise_exception_is_an_error() {
        let err = render("{{ raise_exception('no system role') }}", &[], &ChatOptions::default(), &TemplateTokens::default());
        assert!(matches!(err, Err(TokenizerError::ChatTemplate(m)) if m.contains("no system role")));
    }

    #[test]
    fn tojson_is_python_json_dumps() {
        let tpl = r#"{{ {"a": [1, 2.0, "é\n"], "b": none} | tojson }}|{{ [1] | tojson(indent=2) }}"#;
        let out = render(tpl, &[], &ChatOptions::default(), &TemplateTokens::default()).unwrap();
        assert_eq!(out, "{\"a\": [1, 2.0, \"é\\n\"], \"b\": null}|[\n  1\n]");
    }

    #[test]
    fn python_string_methods_and_strftime() {
        let tpl = "{{ '  x '.strip() }}{{ 'a,b'.split(',') | length }}{{ strftime_now('%Y') | length }}";
        let out = render(tpl, &[], &ChatOptions::default(), &TemplateTokens::default()).unwrap();
        assert_eq!(out, "x24");
        assert_eq!(strftime("%Y-%m-%d %a %d %B", 1_700_000_000), "2023-11-14 Tue 14 November");
    }
}
