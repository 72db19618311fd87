//! Encode throughput of the core without Node in between (the full bench is benches/tokenizer.mjs):
//! `cargo run --release -p tinyforge-tokenizer --example throughput -- <tokenizer.json|model.gguf> <text files>...`
use std::time::Instant;

use tinyforge_tokenizer::Tokenizer;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: throughput <tokenizer.json|model.gguf> <text files>...");
    let tok = if std::path::Path::new(&path).extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        Tokenizer::from_gguf(&path)
    } else {
        Tokenizer::from_file(&path)
    }
    .unwrap();
    let mut text = String::new();
    for f in args {
        text.push_str(&String::from_utf8_lossy(&std::fs::read(f).unwrap()));
    }
    let chunks: Vec<&str> = text.as_bytes().chunks(4096).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    let mb = text.len() as f64 / 1e6;
    for pass in 0..3 {
        let t = Instant::now();
        let n: usize = chunks.iter().map(|c| tok.encode(c, false).unwrap().len()).sum();
        let single = mb / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let m: usize = tok.encode_batch(&chunks, false).unwrap().iter().map(Vec::len).sum();
        let batch = mb / t.elapsed().as_secs_f64();
        assert_eq!(n, m);
        println!("pass {pass}: {mb:.1} MB, {n} tokens: encode {single:.1} MB/s, encode_batch {batch:.1} MB/s");
    }
    let t = Instant::now();
    let r: usize = chunks.iter().map(|c| tok.encode_reference(c, false).unwrap().len()).sum();
    println!("tokenizers crate: {:.1} MB/s ({r} tokens)", mb / t.elapsed().as_secs_f64());
}
