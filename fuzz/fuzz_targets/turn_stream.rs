//! The streaming turn parser (`turn_stream::stream_turn_list`, how the
//! Kaggle CSV copy parses cells too large to hold) on arbitrary bytes,
//! against the whole-cell path (`turns::parse_turn_list`, then
//! `turns::clip_long_turns`).
//!
//! Invariants: no panic; the same turns (nulls as the null text), the same
//! flags, and on error the same message and character position; the source
//! is used as `CellSource` documents (lookahead of at most 5 bytes, moving
//! only past bytes it peeked).
//!
//! The clip keeps 512 KiB at each end of a turn past 1 MiB, far beyond what
//! a fuzz input holds, so a marker expands: `\u{1e}` followed by a character
//! stands for that character repeated to `CLIP_KEEP_BYTES` bytes (less the
//! remainder for a 3-byte one; at most `MAX_FILLERS` per input). Fillers
//! with a few bytes of the fuzzer's own around them put any character at or
//! across the head's cut, the tail's cut and the clip threshold, and four
//! make a turn long enough for the stream to drop bytes from its tail buffer. Such inputs are slow (a
//! few MB parsed twice): tens to hundreds of runs a second.

#![no_main]

use arena_fast_core::turn_stream::{count_chars, is_special, stream_turn_list, CellSource, Turn};
use arena_fast_core::turns::{clip_long_turns, parse_turn_list, CLIP_KEEP_BYTES};
use libfuzzer_sys::fuzz_target;

const NULL_TEXTS: [&str; 3] = ["", "<null>", "null"];
/// How many bytes `plain` hands out at most, by the mode byte: from a
/// byte at a time (pieces cut at every place) to whole runs.
const RUNS: [usize; 8] = [usize::MAX, 1, 2, 3, 5, 7, 64, 4096];
const MARKER: char = '\u{1e}';
const MAX_FILLERS: usize = 4;

/// A cell in memory, read through the `CellSource` interface.
struct SliceSource<'a> {
    bytes: &'a [u8],
    pos: usize,
    chars: usize,
    run: usize,
    /// The furthest byte peeked so far (what `bump` may move past).
    peeked: usize,
}

impl CellSource for SliceSource<'_> {
    fn peek_at(&mut self, k: usize) -> Option<u8> {
        assert!(k <= 5, "lookahead of {k} bytes");
        let byte = self.bytes.get(self.pos + k).copied();
        if byte.is_some() {
            self.peeked = self.peeked.max(self.pos + k + 1);
        }
        byte
    }

    fn bump(&mut self, n: usize) {
        assert!(self.pos + n <= self.peeked, "moved past bytes never peeked");
        self.chars += count_chars(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
    }

    fn chars(&self) -> usize {
        self.chars
    }

    fn plain(&mut self) -> &[u8] {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .take(self.run)
            .take_while(|&&b| !is_special(b))
            .count();
        self.chars += count_chars(&rest[..n]);
        self.pos += n;
        self.peeked = self.peeked.max(self.pos);
        &rest[..n]
    }
}

/// The fuzz input's text with its fillers expanded.
fn expand(text: &str) -> String {
    let mut cell = String::with_capacity(text.len());
    let mut fillers = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != MARKER || fillers == MAX_FILLERS {
            cell.push(c);
            continue;
        }
        let Some(unit) = chars.next() else { break };
        fillers += 1;
        let unit = unit
            .encode_utf8(&mut [0; 4])
            .repeat(CLIP_KEEP_BYTES / unit.len_utf8());
        cell.push_str(&unit);
    }
    cell
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let null_text = NULL_TEXTS[(mode & 3) as usize % NULL_TEXTS.len()];
    let run = RUNS[(mode >> 2) as usize % RUNS.len()];
    // The CSV copy checks UTF-8 before the parser sees a byte; the
    // whole-cell parser takes a str.
    let cell = expand(&String::from_utf8_lossy(rest));

    let whole = parse_turn_list(&cell, null_text).map(|(mut turns, flags)| {
        let clipped = clip_long_turns(&mut turns);
        (turns, flags | clipped)
    });

    let mut src = SliceSource {
        bytes: cell.as_bytes(),
        pos: 0,
        chars: 0,
        run,
        peeked: 0,
    };
    let mut turns = Vec::new();
    let streamed = stream_turn_list(&mut src, &mut |t: Turn<'_>| {
        turns.push(t.unwrap_or(null_text).to_owned())
    });
    match (&whole, streamed) {
        (Ok(expected), Ok(flags)) => {
            assert_eq!(flags, expected.1, "flags on a cell of {} bytes", cell.len());
            if turns != expected.0 {
                let lens = |t: &[String]| t.iter().map(String::len).collect::<Vec<_>>();
                panic!(
                    "turns differ on a cell of {} bytes: streamed {:?}, whole {:?}",
                    cell.len(),
                    lens(&turns),
                    lens(&expected.0)
                );
            }
            assert_eq!(src.pos, cell.len(), "a parsed cell is read to its end");
        }
        (Err(expected), Err(e)) => {
            assert_eq!(
                (e.position, &e.message),
                (expected.position, &expected.message),
                "error on a cell of {} bytes",
                cell.len()
            );
        }
        (whole, streamed) => panic!(
            "whole {:?} but streamed {:?} on a cell of {} bytes",
            whole.as_ref().map(|w| w.1).map_err(|e| e.to_string()),
            streamed.map_err(|e| e.to_string()),
            cell.len()
        ),
    }
});
