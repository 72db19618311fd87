//! Stop strings over streamed text: generation ends at the first occurrence of any stop string
//! and the text is cut before it. While the tail of the text could still grow into a stop string
//! it is held back, so a streaming client never receives text that is later cut.
#[derive(Debug, Clone, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    /// Everything decoded so far (cut at the stop once one matched).
    text: String,
    /// Bytes of `text` already released.
    emitted: usize,
}

/// What `StopStrings::push` released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub text: String,
    /// A stop string matched: generation must end.
    pub stopped: bool,
}

impl StopStrings {
    /// Empty strings are ignored (they would match everywhere).
    pub fn new(stops: &[String]) -> Self {
        Self { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), ..Self::default() }
    }

    /// Appends a text delta and returns what can safely be released.
    pub fn push(&mut self, delta: &str) -> Released {
        // A match cannot start in released text: its start would have been a held-back prefix.
        let from = self.emitted;
        self.text.push_str(delta);
        let hit = self.stops.iter().filter_map(|s| self.text[from..].find(s.as_str()).map(|i| from + i)).min();
        if let Some(cut) = hit {
            self.text.truncate(cut);
            return Released { text: self.release(cut), stopped: true };
        }
        let end = self.text.len() - self.held_back(from);
        Released { text: self.release(end), stopped: false }
    }

    /// Releases whatever was held back (generation ended for another reason).
    pub fn flush(&mut self) -> String {
        self.release(self.text.len())
    }

    /// The whole released text.
    pub fn text(&self) -> &str {
        &self.text[..self.emitted]
    }

    fn release(&mut self, end: usize) -> String {
        let out = self.text[self.emitted..end].to_string();
        self.emitted = end;
        out
    }

    /// Length of the longest suffix of `text[from..]` that is a proper prefix of a stop string.
    fn held_back(&self, from: usize) -> usize {
        let tail = &self.text[from..];
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        (1..longest.min(tail.len() + 1))
            .rev()
            .find(|&n| tail.is_char_boundary(tail.len() - n) && self.stops.iter().any(|s| s.starts_with(&tail[tail.len() - n..])))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops(s: &[&str]) -> StopStrings {
        StopStrings::new(&s.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn cuts_before_a_stop_split_across_deltas_and_never_releases_it() {
        let mut s = stops(&["</end>", "zz"]);
        let mut out = String::new();
        for d in ["Hello </", "en", "d> more"] {
            let r = s.push(d);
            out += &r.text;
            assert!(!out.contains('<'), "released a stop prefix: {out:?}");
            if r.stopped {
                break;
            }
        }
        assert_eq!(out, "Hello ");
        assert_eq!(s.text(), "Hello ");
    }

    #[test]
    fn earliest_stop_wins_and_false_prefixes_are_released() {
        let mut s = stops(&["cd", "b"]);
        let r = s.push("abcd");
        assert_eq!(r, Released { text: "a".into(), stopped: true });
        let mut s = stops(&["xyz"]);
        assert_eq!(s.push("ax").text, "a");
        assert_eq!(s.push("yq").text, "xyq", "the held `xy` was not a stop after all");
        assert_eq!(s.push("x").text, "");
        assert_eq!(s.flush(), "x");
    }

    #[test]
    fn multibyte_text_is_held_on_char_boundaries() {
        let mut s = stops(&["é!"]);
        assert_eq!(s.push("café").text, "caf");
        let r = s.push("!");
        assert_eq!((r.text.as_str(), r.stopped), ("", true));
        assert_eq!(s.text(), "caf");
    }

    #[test]
    fn no_stops_releases_everything() {
        let mut s = stops(&["", ""]);
        assert_eq!(s.push("a\u{0}b").text, "a\u{0}b");
    }
}
