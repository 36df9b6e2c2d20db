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
