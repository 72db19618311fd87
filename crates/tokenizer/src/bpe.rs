//! Byte-level BPE on raw bytes: the 256 byte symbols are looked up once, merges are applied by
//! rank (leftmost first among equal ranks, as the `tokenizers` crate's heap does), and every
//! word's result is kept in a per-thread cache, so repeated words cost one hash lookup.
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustc_hash::FxHashMap;

/// Words longer than this are merged with a heap; shorter ones with a linear scan (faster there).
const HEAP_THRESHOLD: usize = 64;
/// Longer words are not cached (they are rare and would bloat the cache).
const MAX_CACHED_WORD: usize = 128;
/// Entries per thread and tokenizer before the cache is flushed.
const CACHE_CAPACITY: usize = 65_536;
/// Tokenizers per thread whose caches are kept.
const CACHES_PER_THREAD: usize = 4;
/// Marks a byte without a vocabulary entry in `byte_ids`.
pub(crate) const MISSING: u32 = u32::MAX;

static NEXT_UID: AtomicUsize = AtomicUsize::new(1);

type WordCache = FxHashMap<Box<[u8]>, Box<[u32]>>;

thread_local! {
    static CACHES: RefCell<Vec<(usize, WordCache)>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug)]
pub(crate) struct ByteBpe {
    uid: usize,
    /// Vocabulary id of each byte's byte-level character, `MISSING` if the vocabulary lacks it
    /// (SmolLM2 has no token for bytes that never occur in UTF-8 text, e.g. 0xC0 or 0xFF).
    byte_ids: [u32; 256],
    /// What a missing byte becomes: `None` drops it (as `tokenizers` does without `unk_token`),
    /// `Some((unk id, fuse consecutive))` otherwise.
    unk: Option<(u32, bool)>,
    /// (left id, right id) packed in a u64 → (rank, merged id).
    merges: FxHashMap<u64, (u32, u32)>,
    /// With `ignore_merges`, a word that is itself in the vocabulary is one token.
    whole_words: Option<FxHashMap<Box<[u8]>, u32>>,
}

#[inline]
fn pair_key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

impl ByteBpe {
    /// `merges` are (left id, right id, merged id) in rank order; `vocab_bytes` maps the raw bytes
    /// each token stands for to its id (only used with `ignore_merges`).
    // The table is moved into the struct it builds; a reference would only add a copy.
    #[allow(clippy::large_types_passed_by_value)]
    pub(crate) fn new(
        byte_ids: [u32; 256],
        unk: Option<(u32, bool)>,
        merges: impl IntoIterator<Item = (u32, u32, u32)>,
        whole_words: Option<FxHashMap<Box<[u8]>, u32>>,
    ) -> Self {
        let mut map = FxHashMap::default();
        for (rank, (a, b, merged)) in merges.into_iter().enumerate() {
            // A later duplicate of a pair never wins in `tokenizers` either (first rank kept).
            map.entry(pair_key(a, b)).or_insert((rank as u32, merged));
        }
        Self { uid: NEXT_UID.fetch_add(1, Ordering::Relaxed), byte_ids, unk, merges: map, whole_words }
    }

    /// Runs `f` with this tokenizer's word cache on the current thread.
    pub(crate) fn with_cache<R>(&self, f: impl FnOnce(&mut WordCache) -> R) -> R {
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let index = if let Some(i) = caches.iter().position(|(uid, _)| *uid == self.uid) {
                i
            } else {
                if caches.len() >= CACHES_PER_THREAD {
                    caches.remove(0);
                }
                caches.push((self.uid, WordCache::default()));
                caches.len() - 1
            };
            f(&mut caches[index].1)
        })
    }

    /// Appends the ids of one pre-tokenized word.
    #[inline]
    pub(crate) fn encode_word(&self, word: &[u8], cache: &mut WordCache, out: &mut Vec<u32>) {
        if word.len() == 1 {
            let id = self.byte_ids[word[0] as usize];
            if id != MISSING {
                out.push(id);
                return;
            }
        }
        if let Some(ids) = cache.get(word) {
            out.extend_from_slice(ids);
            return;
        }
        let start = out.len();
        self.merge_word(word, out);
        if word.len() <= MAX_CACHED_WORD {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(word.into(), out[start..].into());
        }
    }

    fn merge_word(&self, word: &[u8], out: &mut Vec<u32>) {
        if let Some(id) = self.whole_words.as_ref().and_then(|w| w.get(word)) {
            out.push(*id);
            return;
        }
        let mut symbols = Vec::with_capacity(word.len());
        let mut after_unk = false;
        for &b in word {
            let id = self.byte_ids[b as usize];
            if id != MISSING {
                symbols.push(id);
                after_unk = false;
            } else if let Some((unk, fuse)) = self.unk {
                if !(fuse && after_unk) {
                    symbols.push(unk);
                }
                after_unk = true;
            }
        }
        if symbols.is_empty() {
            return;
        }
        if symbols.len() <= HEAP_THRESHOLD {
            self.merge_linear(symbols, out);
        } else {
            self.merge_heap(symbols, out);
        }
    }

    /// Repeatedly merges the lowest-rank adjacent pair (leftmost on ties).
    fn merge_linear(&self, mut symbols: Vec<u32>, out: &mut Vec<u32>) {
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for k in 0..symbols.len().saturating_sub(1) {
                if let Some(&(rank, merged)) = self.merges.get(&pair_key(symbols[k], symbols[k + 1]))
                    && best.is_none_or(|(r, _, _)| rank < r)
                {
                    best = Some((rank, k, merged));
                }
            }
            let Some((_, k, merged)) = best else { break };
            symbols[k] = merged;
            symbols.remove(k + 1);
        }
        out.extend_from_slice(&symbols);
    }

    /// Same result as `merge_linear` in O(n log n): a heap of (rank, position) over a linked list,
    /// with stale entries skipped when popped.
    fn merge_heap(&self, symbols: Vec<u32>, out: &mut Vec<u32>) {
        let n = symbols.len();
        let mut ids = symbols;
        let mut alive = vec![true; n];
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut heap = BinaryHeap::with_capacity(n);
        for k in 0..n - 1 {
            if let Some(&(rank, merged)) = self.merges.get(&pair_key(ids[k], ids[k + 1])) {
                heap.push(Reverse((rank, k, merged)));
            }
        }
        while let Some(Reverse((_, k, merged))) = heap.pop() {
            if !alive[k] || next[k] >= n {
                continue;
            }
            let right = next[k];
            let current = self.merges.get(&pair_key(ids[k], ids[right]));
            if current.is_none_or(|&(_, m)| m != merged) {
                continue;
            }
            ids[k] = merged;
            alive[right] = false;
            next[k] = next[right];
            if next[k] < n {
                prev[next[k]] = k;
            }
            if prev[k] < n {
                let p = prev[k];
                if let Some(&(rank, m)) = self.merges.get(&pair_key(ids[p], ids[k])) {
                    heap.push(Reverse((rank, p, m)));
                }
            }
            if next[k] < n
                && let Some(&(rank, m)) = self.merges.get(&pair_key(ids[k], ids[next[k]]))
            {
                heap.push(Reverse((rank, k, m)));
            }
        }
        let mut k = 0;
        while k < n {
            out.push(ids[k]);
            k = next[k];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes are their own ids; merges: a+b=256, 256+c=257, b+c=258 (rank order).
    fn toy() -> ByteBpe {
        let mut byte_ids = [0u32; 256];
        for (i, id) in byte_ids.iter_mut().enumerate() {
            *id = i as u32;
        }
        let (a, b, c) = (u32::from(b'a'), u32::from(b'b'), u32::from(b'c'));
        ByteBpe::new(byte_ids, None, [(a, b, 256), (256, c, 257), (b, c, 258)], None)
    }

    #[test]
    fn heap_and_linear_agree() {
        let bpe = toy();
        let word: Vec<u8> = b"abcabcbcab".repeat(20);
        let (mut lin, mut heap) = (Vec::new(), Vec::new());
        let syms: Vec<u32> = word.iter().map(|&b| u32::from(b)).collect();
        bpe.merge_linear(syms.clone(), &mut lin);
        bpe.merge_heap(syms, &mut heap);
        assert_eq!(lin, heap);
        assert_eq!(&lin[..4], &[257, 257, 258, 256]);
    }
}
