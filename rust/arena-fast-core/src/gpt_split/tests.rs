use onig::Regex;

use super::*;

fn by_regex(pattern: &str, s: &str) -> Vec<String> {
    let regex = Regex::new(pattern).unwrap();
    regex
        .find_iter(s)
        .map(|(a, b)| s[a..b].to_owned())
        .collect()
}

fn by_scanner(pattern: &str, s: &str) -> Vec<String> {
    let scanner = Scanner::for_pattern(pattern).unwrap();
    let mut out = Vec::new();
    scanner
        .split(s, |t| {
            out.push(t.to_owned());
            Ok::<(), ()>(())
        })
        .unwrap();
    out
}

#[test]
fn split_equals_the_regex() {
    let texts = [
        "Hello world, it's 12345 o'clock!  \n\n  x\r\n\ty  ",
        "I'M HERE'S 'LL 'Ve 're'd 'ſ ’s don’t",
        "  \u{3000}abc \u{a0}d\u{85}e 1\u{0661}\u{0662}\u{0663}\u{0664} ½⅓",
        "e\u{301}\u{302} 👍🏽 👨‍👩‍👧 \r \r\r\n x \n \t.,;\r\n",
        "   ",
        " .x",
        "\t.x\u{2028}a\u{2029}",
        "a  1  .  \t\tz'",
        // Case changes inside words, title case, modifier letters, marks.
        "HelloWORLD camelCase XMLHttpRequest ǅungla ǈj ʰa aʰB ᾈᾀ Ǆ",
        "\u{301}x \u{301}\u{302}A .\u{301}B a\u{301}\u{302}C 中文Abc ABC'S ab'LL X'd",
        "path/to/file.txt\r\n//\n a/\n/b ?!/\r/ x\u{300}'s 'S 'st",
        "ÀÉÎõü ΑΒΓαβγ АБВабв ‘quoted’ «x» ﬁ ﬀl Ⅻ ⅻ 𝐀𝐚 ß ẞ",
    ];
    for pattern in PATTERNS {
        for text in texts {
            assert_eq!(
                by_scanner(pattern, text),
                by_regex(pattern, text),
                "{text:?}"
            );
        }
    }
}

#[test]
fn every_character_in_context_splits_as_the_regex() {
    // Each character between each pair of neighbours that matters.
    let around = ["a", "A", "1", " ", "\n", ".", "'", "/", "\u{301}", "ǅ"];
    for pattern in PATTERNS {
        let mut text = String::new();
        for c in (0..=0x10FFFFu32).step_by(7).filter_map(char::from_u32) {
            for l in around {
                text.push_str(l);
                text.push(c);
                text.push_str(l);
                text.push(c);
                text.push(c);
            }
        }
        assert_eq!(by_scanner(pattern, &text), by_regex(pattern, &text));
    }
}

/// Every string of up to `len` characters of `alphabet` splits as the
/// regex does, for every pattern.
fn every_string_splits_as_the_regex(alphabet: &[&str], len: u32) {
    for pattern in PATTERNS {
        let regex = Regex::new(pattern).unwrap();
        let scanner = Scanner::for_pattern(pattern).unwrap();
        let n = alphabet.len();
        let mut text = String::new();
        for k in 1..=len {
            for mut code in 0..n.pow(k) {
                text.clear();
                for _ in 0..k {
                    text.push_str(alphabet[code % n]);
                    code /= n;
                }
                let mut ours = Vec::new();
                scanner
                    .split(&text, |t| {
                        ours.push(t);
                        Ok::<(), ()>(())
                    })
                    .unwrap();
                let theirs: Vec<&str> = regex.find_iter(&text).map(|(a, b)| &text[a..b]).collect();
                assert_eq!(ours, theirs, "{text:?} {pattern}");
            }
        }
    }
}

#[test]
fn every_short_ascii_heavy_string_splits_as_the_regex() {
    // Letters of both cases (contraction letters too), digits, the
    // apostrophe, spaces and line breaks, a symbol, non-ASCII letters.
    let alphabet = [
        "a", "A", "s", "L", "1", "'", " ", "\n", "\r", ",", "é", "中",
    ];
    every_string_splits_as_the_regex(&alphabet, 5);
    // With o200k's slash, a tab, a mark, a non-ASCII space and digit, a
    // title-case letter, the long s (folds to `s`) and an emoji.
    let more = [
        "a", "B", "d", "'", " ", "\n", "/", "\t", "\u{301}", "\u{a0}", "\u{661}", "ǅ", "ſ", "👍",
    ];
    every_string_splits_as_the_regex(&more, 4);
}

#[test]
fn only_the_exact_patterns_are_known() {
    for pattern in PATTERNS {
        assert!(Scanner::for_pattern(pattern).is_some());
        // One character off (`\p{N}` as `\p{Nd}`) is not recognised.
        let off = pattern.replacen(r"\p{N}", r"\p{Nd}", 1);
        assert!(Scanner::for_pattern(&off).is_none());
    }
    let off = O200K_PATTERN.replace("[\\r\\n/]*", "[\\r\\n]*");
    assert!(Scanner::for_pattern(&off).is_none());
}

/// This thread's CPU time, steadier than the wall clock on a shared machine.
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// `Scanner::split` alone, in MB/s (best of 9 by the thread's CPU time), on the files named by
/// `ARENA_SPLIT_BENCH` (paths joined by `:`; `benches/bench_split.py` writes
/// them): `cargo test -p arena-fast-core --profile dev-opt --lib
/// split_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn split_throughput() {
    let Ok(paths) = std::env::var("ARENA_SPLIT_BENCH") else {
        eprintln!("ARENA_SPLIT_BENCH names no text files");
        return;
    };
    let names = ["llama3", "qwen2", "o200k", "tekken"];
    for path in paths.split(':') {
        let text = std::fs::read_to_string(path).unwrap();
        for (name, pattern) in names.iter().zip(PATTERNS) {
            let scanner = Scanner::for_pattern(pattern).unwrap();
            let mut best = f64::INFINITY;
            let mut count = 0usize;
            for _ in 0..9 {
                count = 0;
                let start = thread_cpu_seconds();
                scanner
                    .split(&text, |t| {
                        count += usize::from(!t.is_empty());
                        Ok::<(), ()>(())
                    })
                    .unwrap();
                best = best.min(thread_cpu_seconds() - start);
            }
            println!(
                "{path} {name:7} {:7.1} MB/s {:6.1} M pre-tokens/s ({count} pre-tokens, {} bytes)",
                text.len() as f64 / best / 1e6,
                count as f64 / best / 1e6,
                text.len()
            );
        }
    }
}
