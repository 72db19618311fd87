//! Hand-written equivalent of the byte-level pre-tokenizer of GPT-2 style tokenizers:
//! an optional individual-digit split (`Digits { individual_digits: true }`, which uses
//! `char::is_numeric`), then the GPT-2 regex
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! run on each piece separately (so a piece end acts as end of text for the lookahead).
//!
//! The `tokenizers` crate runs that regex through Oniguruma. To classify characters exactly as it
//! does (its Unicode tables may differ from Rust's), non-ASCII classes are read from Oniguruma
//! itself, one 4096-code-point block at a time, the first time a block is seen.
use std::sync::{LazyLock, OnceLock};

/// Character classes of the GPT-2 regex.
const OTHER: u8 = 0;
const LETTER: u8 = 1;
const NUMBER: u8 = 2;
const SPACE: u8 = 3;

const BLOCK_BITS: u32 = 12;
const BLOCK_COUNT: usize = (0x110000 >> BLOCK_BITS) as usize;
static BLOCKS: [OnceLock<Box<[u8]>>; BLOCK_COUNT] = [const { OnceLock::new() }; BLOCK_COUNT];

/// ASCII classes, the hot path (checked against Oniguruma in a test below).
static ASCII: [u8; 128] = {
    let mut t = [OTHER; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = if c.is_ascii_alphabetic() {
            LETTER
        } else if c.is_ascii_digit() {
            NUMBER
        } else if matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            SPACE
        } else {
            OTHER
        };
        i += 1;
    }
    t
};

struct ClassRegexes {
    letter: onig::Regex,
    number: onig::Regex,
    space: onig::Regex,
}

// Same constructor (default syntax and options) as `tokenizers`' SysRegex, so `\s` and `\p{..}`
// mean exactly what they mean in its ByteLevel regex.
static REGEXES: LazyLock<ClassRegexes> = LazyLock::new(|| ClassRegexes {
    letter: onig::Regex::new(r"\p{L}+").expect("static regex"),
    number: onig::Regex::new(r"\p{N}+").expect("static regex"),
    space: onig::Regex::new(r"\s+").expect("static regex"),
});

fn compute_block(block: usize) -> Box<[u8]> {
    let base = (block as u32) << BLOCK_BITS;
    let mut classes = vec![OTHER; 1 << BLOCK_BITS].into_boxed_slice();
    let text: String = (base..base + (1 << BLOCK_BITS)).filter_map(char::from_u32).collect();
    let re = &*REGEXES;
    for (regex, class) in [(&re.letter, LETTER), (&re.number, NUMBER), (&re.space, SPACE)] {
        for (start, end) in regex.find_iter(&text) {
            for c in text[start..end].chars() {
                classes[(c as u32 - base) as usize] = class;
            }
        }
    }
    classes
}

#[inline]
fn class_of_non_ascii(c: char) -> u8 {
    let cp = c as u32;
    let block = (cp >> BLOCK_BITS) as usize;
    BLOCKS[block].get_or_init(|| compute_block(block))[(cp & ((1 << BLOCK_BITS) - 1)) as usize]
}

/// (class, byte length) of the character starting at byte `i` of `s`.
// The pre-tokenizer's innermost call, once per character of every input.
#[allow(clippy::inline_always)]
#[inline(always)]
fn char_at(s: &str, i: usize) -> (u8, usize) {
    let b = s.as_bytes()[i];
    if b < 0x80 {
        return (ASCII[b as usize], 1);
    }
    // SAFETY-free slow path: `i` is always a char boundary here.
    let c = s[i..].chars().next().expect("char boundary");
    (class_of_non_ascii(c), c.len_utf8())
}

/// Length of a contraction (`s t m d re ve ll`) right after an apostrophe, if any.
#[inline]
fn contraction_len(rest: &[u8]) -> usize {
    match rest {
        [b's' | b't' | b'm' | b'd', ..] => 1,
        [b'r' | b'v', b'e', ..] | [b'l', b'l', ..] => 2,
        _ => 0,
    }
}

/// Splits `text` into the words BPE runs on, calling `emit` with each in order.
/// The words cover `text` exactly, without gaps or overlaps.
pub(crate) fn split_words<'a>(text: &'a str, split_digits: bool, emit: &mut impl FnMut(&'a str)) {
    if !split_digits {
        return scan_gpt2(text, emit);
    }
    let bytes = text.as_bytes();
    let mut segment = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (numeric, len) = if b < 0x80 {
            (b.is_ascii_digit(), 1)
        } else {
            let c = text[i..].chars().next().expect("char boundary");
            (c.is_numeric(), c.len_utf8())
        };
        if numeric {
            scan_gpt2(&text[segment..i], emit);
            emit(&text[i..i + len]);
            segment = i + len;
        }
        i += len;
    }
    scan_gpt2(&text[segment..], emit);
}

/// The GPT-2 regex as a scanner; alternatives are tried in the regex's order.
fn scan_gpt2<'a>(s: &'a str, emit: &mut impl FnMut(&'a str)) {
    let bytes = s.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        let (class, len) = char_at(s, i);
        if bytes[i] == b'\'' {
            let c = contraction_len(&bytes[i + 1..]);
            if c > 0 {
                emit(&s[i..i + 1 + c]);
                i += 1 + c;
                continue;
            }
        }
        let mut run_class = class;
        let mut j = i + len;
        // ` ?X+`: a single ASCII space joins the run of letters, numbers or symbols after it.
        if bytes[i] == b' ' && j < n {
            let (next, next_len) = char_at(s, j);
            if next != SPACE {
                run_class = next;
                j += next_len;
            }
        }
        if run_class != SPACE {
            while j < n {
                let (c, l) = char_at(s, j);
                if c != run_class {
                    break;
                }
                j += l;
            }
            emit(&s[i..j]);
            i = j;
            continue;
        }
        // Whitespace: `\s+(?!\S)` keeps the last space for the word that follows, unless the run
        // ends the text or is a single character (then `\s+` takes it).
        let mut last = i;
        let mut j = i;
        while j < n {
            let (c, l) = char_at(s, j);
            if c != SPACE {
                break;
            }
            last = j;
            j += l;
        }
        let end = if j == n || last == i { j } else { last };
        emit(&s[i..end]);
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, digits: bool) -> Vec<&str> {
        let mut out = Vec::new();
        split_words(text, digits, &mut |w| out.push(w));
        out
    }

    #[test]
    fn ascii_table_matches_oniguruma() {
        let block = compute_block(0);
        for b in 0u8..128 {
            assert_eq!(ASCII[b as usize], block[b as usize], "byte {b:#x}");
        }
    }

    #[test]
    fn gpt2_examples() {
        assert_eq!(words("Hello world", false), ["Hello", " world"]);
        assert_eq!(words("I'm  here\n\n", false), ["I", "'m", " ", " here", "\n\n"]);
        assert_eq!(words("a  1", true), ["a", "  ", "1"]);
        assert_eq!(words("x 12", false), ["x", " 12"]);
        assert_eq!(words("x 12", true), ["x", " ", "1", "2"]);
        assert_eq!(words("!!'s DON'T", false), ["!!'", "s", " DON", "'", "T"]);
        assert_eq!(words("\t\tfoo", false), ["\t", "\t", "foo"]);
        assert_eq!(words("", true), Vec::<&str>::new());
    }
}
