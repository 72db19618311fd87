//! Giving resident memory back to the system where ONNX Runtime and glibc keep more than a
//! served model needs (issue 10: RSS < model file + 150 MB).
//!
//! - After load, ORT keeps the memory-mapped external-data file mapped for the initializers it
//!   did not repack: for `SmolLM2` the int8 embedding table (27.6 MB, plus 4.4 MB of scales and
//!   zero points) that `Gather` reads one row per token from. Load read all of it (the tied
//!   head's `MatMulNBits` repacked its own copy from those bytes), so all of it stays resident
//!   though a request touches a few rows. These pages are clean copies of the file: dropping
//!   them from our page tables (`MADV_DONTNEED`) costs a minor fault per row later, from the
//!   page cache.
//! - glibc keeps freed heap in its arenas; the session build frees tens of MB of temporaries
//!   (the decoded graph, transient weight copies) that `malloc_trim` returns.
//!
//! Linux with glibc only; elsewhere these are no-ops.
use std::path::Path;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod sys {
    use std::ffi::{c_int, c_void};

    /// `<sys/mman.h>`: the range may be dropped; private file pages refault from the file.
    pub const MADV_DONTNEED: c_int = 4;

    unsafe extern "C" {
        pub fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
        pub fn malloc_trim(pad: usize) -> c_int;
    }
}

/// Drops the resident pages of every private mapping of a file under `dir` that holds no
/// modified page; returns the bytes that were resident in them. Mappings with any anonymous
/// (copied-on-write) page are left alone: `MADV_DONTNEED` would lose what was written there.
pub(crate) fn release_file_pages(dir: &Path) -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let Ok(dir) = dir.canonicalize() else { return 0 };
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return 0 };
        let mut released = 0;
        for m in parse_smaps(&smaps) {
            if !m.private || m.anonymous_kb != 0 || m.rss_kb == 0 || !Path::new(m.path).starts_with(&dir) {
                continue;
            }
            // SAFETY: the range is one whole mapping of a file, as listed by the kernel just now;
            // it is private and has no anonymous page, so every resident page is an unmodified
            // copy of the file and refaults with the same bytes: no reader can see a difference.
            let rc = unsafe { sys::madvise(m.start as *mut std::ffi::c_void, m.end - m.start, sys::MADV_DONTNEED) };
            if rc == 0 {
                released += m.rss_kb * 1024;
            }
        }
        released
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = dir;
        0
    }
}

/// Lets the kernel drop the whole pages inside `buf`, which then read as zeros: for buffers
/// whose contents no longer matter (a free KV cache row).
pub(crate) fn forget(buf: &mut [f32]) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const PAGE: usize = 4096;
        let (start, end) = (buf.as_mut_ptr() as usize, buf.as_mut_ptr() as usize + std::mem::size_of_val(buf));
        let (first, last) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        if last > first {
            // SAFETY: `first..last` lies inside `buf`, which we borrow mutably (nobody else reads
            // it meanwhile); it is private anonymous memory (a heap allocation), so after
            // `MADV_DONTNEED` it reads as zeros, a valid `f32` bit pattern (0.0).
            unsafe {
                sys::madvise(first as *mut std::ffi::c_void, last - first, sys::MADV_DONTNEED);
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = buf;
}

/// Returns glibc's free heap pages (in every arena) to the system.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases memory glibc holds as free; it takes no pointers.
    unsafe {
        sys::malloc_trim(0);
    }
}

#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
struct Mapping<'a> {
    start: usize,
    end: usize,
    private: bool,
    path: &'a str,
    rss_kb: usize,
    anonymous_kb: usize,
}

/// The file-backed mappings of a `/proc/PID/smaps` text.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn parse_smaps(text: &str) -> Vec<Mapping<'_>> {
    let mut out: Vec<Mapping<'_>> = Vec::new();
    let mut current: Option<Mapping<'_>> = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((a, b)) = first.split_once('-').filter(|(a, _)| a.chars().all(|c| c.is_ascii_hexdigit())) {
            out.extend(current.take());
            let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else { continue };
            let perms = fields.next().unwrap_or("");
            // offset, device, inode, then the path (absent for anonymous memory).
            let path = line.splitn(6, char::is_whitespace).nth(5).unwrap_or("").trim();
            if path.starts_with('/') {
                current = Some(Mapping { start, end, private: perms.ends_with('p'), path, rss_kb: 0, anonymous_kb: 0 });
            }
            continue;
        }
        let Some(m) = current.as_mut() else { continue };
        let kb = || fields.clone().next().and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        match first {
            "Rss:" => m.rss_kb = kb(),
            "Anonymous:" => m.anonymous_kb = kb(),
            _ => {}
        }
    }
    out.extend(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_mappings_with_their_resident_and_anonymous_sizes() {
        let text = "\
7f796b000000-7f796cb00000 rw-p 00000000 00:2f 123 /tmp/x/onnx/model.onnx_data
Size:              27648 kB
Rss:               27648 kB
Anonymous:             0 kB
VmFlags: rd wr mr mw me ac
7f7970000000-7f7973fd3000 rw-p 00000000 00:00 0 
Rss:               65348 kB
Anonymous:         65348 kB
7f7980700000-7f7980a60000 rw-p 01b00000 00:2f 123 /tmp/x/onnx/with space.bin
Rss:                3456 kB
Anonymous:             8 kB
";
        let m = parse_smaps(text);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].start, m[0].end, m[0].private), (0x7f79_6b00_0000, 0x7f79_6cb0_0000, true));
        assert_eq!((m[0].path, m[0].rss_kb, m[0].anonymous_kb), ("/tmp/x/onnx/model.onnx_data", 27648, 0));
        assert_eq!((m[1].path, m[1].rss_kb, m[1].anonymous_kb), ("/tmp/x/onnx/with space.bin", 3456, 8));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn forgets_the_whole_pages_inside_a_buffer_and_keeps_its_edges() {
        // An offset start, so both ends cut through a page.
        let mut v = vec![1.0_f32; 3 << 20];
        let buf = &mut v[5..(3 << 20) - 7];
        forget(buf);
        let bits = |x: &f32| x.to_bits();
        let zeros = buf.iter().filter(|x| bits(x) == 0).count();
        assert!(zeros >= buf.len() - 2048, "{zeros} of {} values read as zeros", buf.len());
        assert_eq!(bits(&buf[0]), 1.0_f32.to_bits(), "the partial first page is kept");
        assert_eq!(bits(&buf[buf.len() - 1]), 1.0_f32.to_bits(), "the partial last page is kept");
        assert!(v[..5].iter().all(|x| bits(x) == 1.0_f32.to_bits()));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn releases_the_clean_pages_of_a_mapped_file_and_keeps_their_bytes() {
        use std::io::Write;
        let tmp = tinyforge_testkit::temp_dir("release-pages");
        let path = tmp.path().join("weights.bin");
        let bytes: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        std::fs::File::create(&path).and_then(|mut f| f.write_all(&bytes)).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a private read-only mapping of a file this test owns and does not change.
        let map = unsafe { memmap2::MmapOptions::new().map_copy_read_only(&file) }.unwrap();
        let sum: u64 = map.iter().map(|&b| u64::from(b)).sum();
        let released = release_file_pages(tmp.path());
        assert!(released >= 7 << 20, "released {released} bytes of an 8 MiB file read end to end");
        assert_eq!(map.iter().map(|&b| u64::from(b)).sum::<u64>(), sum);
        assert_eq!(&map[..], &bytes[..]);
        // A second pass finds nothing resident left to release but what the checks touched again.
        trim_heap();
    }
}
