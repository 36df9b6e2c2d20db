#!/usr/bin/env bash
# Coverage-guided fuzzing of arena-fast-core: cargo-fuzz (libFuzzer) on the
# stable toolchain, no sanitizer (the core has no unsafe code; libFuzzer's
# sanitizer-coverage instrumentation needs no nightly, AddressSanitizer
# would). Targets, in fuzz/fuzz_targets/:
#   turns     the JSON-list turn parser, against serde_json
#   turn_stream  the streaming turn parser (huge CSV cells), against turns
#   tokenize  word-split encoding through the cache, against whole-text tokenizers
#   encode    the encoder: every strategy, preset and arbitrary templates, swaps
#   plan      the packer and the padded batcher over every rank
#   collate   packed and padded batches from arbitrary offsets and indices
#   rows      rows from arbitrary Arrow buffers, and their features
#   chat_template  Jinja chat templates, arbitrary and turn-based, over
#             arbitrary conversations (ARENA_FUZZ_CHAT_TEMPLATE: a
#             tokenizer_config.json whose template to fuzz instead)
#
#   scripts/fuzz.sh short               each target SHORT_SECONDS (8) seconds: CI
#   scripts/fuzz.sh long [SECONDS]      each target SECONDS (default 600) seconds
#   scripts/fuzz.sh run TARGET [SECONDS] [LIBFUZZER_ARGS...]
#   scripts/fuzz.sh repro TARGET FILE   run one input (a crash artifact) again
#   scripts/fuzz.sh lint                rustfmt and clippy on the fuzz crate
#   scripts/fuzz.sh build
#
# Inputs found are kept in fuzz/corpus/TARGET (not in git) and grow from run
# to run; fuzz/seeds/TARGET (in git) holds hand-made seeds and the inputs of
# past crashes, replayed by every run. A crash stops that target, leaves its
# input in fuzz/artifacts/TARGET/ and makes the script exit 1 after the
# other targets ran. The `long` run also fuzzes `tokenize` and `encode` with
# Gemma's tokenizer when ../shared/tokenizers/gemma3 is there.
#
# Environment: FUZZ_TARGETS (names, default all), SHORT_SECONDS,
# FUZZ_TIMEOUT (seconds one input may take, default 10), FUZZ_RSS_MB (2048),
# ARENA_FUZZ_TOKENIZER (a tokenizer.json for tokenize / encode instead of
# the demo one), ARENA_FUZZ_DEBUG=1 (repro: print the decoded input).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS="turns turn_stream tokenize encode plan collate rows chat_template"
TARGETS=${FUZZ_TARGETS:-$ALL_TARGETS}
# Release build with debug assertions and overflow checks, no sanitizer.
BUILD_FLAGS=(--sanitizer none --release --debug-assertions)
GEMMA="$ROOT/../shared/tokenizers/gemma3/tokenizer.json"

log() { printf '== fuzz: %s (%ss)\n' "$*" "$SECONDS"; }

install() {
    if [ "$(cargo fuzz --version 2>/dev/null | head -n1)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
        log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
        cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
    fi
}

build() {
    install
    log "building the targets"
    # fuzz/Cargo.lock pins the same versions as the root Cargo.lock.
    (cd fuzz && cargo fetch --locked --quiet)
    cargo fuzz build "${BUILD_FLAGS[@]}"
}

# run TARGET SECONDS [LIBFUZZER_ARGS...]
run() {
    local target=$1 seconds=$2
    shift 2
    local corpus="$ROOT/fuzz/corpus/$target" seeds="$ROOT/fuzz/seeds/$target"
    local dict="$ROOT/fuzz/dicts/$target.dict"
    mkdir -p "$corpus" "$ROOT/fuzz/artifacts/$target"
    local args=(
        -max_total_time="$seconds"
        -timeout="${FUZZ_TIMEOUT:-10}"
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}"
        -max_len=8192
        -print_final_stats=1
        -artifact_prefix="$ROOT/fuzz/artifacts/$target/"
    )
    [ -f "$dict" ] && args+=(-dict="$dict")
    local dirs=("$corpus")
    [ -d "$seeds" ] && dirs+=("$seeds")
    log "$target for ${seconds}s${ARENA_FUZZ_TOKENIZER:+ with $ARENA_FUZZ_TOKENIZER}"
    local out status
    out=$(mktemp)
    # The full output goes to $out; the summary lines to the terminal.
    set +e
    cargo fuzz run "${BUILD_FLAGS[@]}" "$target" "${dirs[@]}" -- "${args[@]}" "$@" 2>&1 |
        tee "$out" |
        awk '/^#[0-9]+[[:space:]]+(INITED|DONE)|^Done |^stat::(number_of_executed_units|peak_rss_mb)|ERROR|^SUMMARY|Test unit written/ { print; fflush() }
             /panicked at/ { print; if ((getline line) > 0) print line; fflush() }'
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        log "$target FAILED (exit $status); its last output:"
        tail -n 60 "$out"
    fi
    rm -f "$out"
    return "$status"
}

# each SECONDS: every target in turn, then the verdict.
each() {
    local seconds=$1 failed=()
    build
    for target in $TARGETS; do
        run "$target" "$seconds" || failed+=("$target")
    done
    if [ "${LONG_GEMMA:-0}" = 1 ] && [ -f "$GEMMA" ]; then
        for target in tokenize encode; do
            case " $TARGETS " in *" $target "*) ;; *) continue ;; esac
            ARENA_FUZZ_TOKENIZER=$GEMMA run "$target" "$seconds" || failed+=("$target (gemma3)")
        done
    fi
    if [ ${#failed[@]} -gt 0 ]; then
        log "crashes in: ${failed[*]} (inputs in fuzz/artifacts/; replay with: scripts/fuzz.sh repro TARGET FILE)"
        exit 1
    fi
    log "no crash"
}

case "${1:-}" in
short)
    each "${SHORT_SECONDS:-8}"
    ;;
long)
    LONG_GEMMA=1 each "${2:-600}"
    ;;
run)
    [ $# -ge 2 ] || { echo "usage: $0 run TARGET [SECONDS] [LIBFUZZER_ARGS...]" >&2; exit 2; }
    target=$2
    seconds=${3:-600}
    shift $(($# < 3 ? $# : 3))
    build
    run "$target" "$seconds" "$@"
    ;;
repro)
    [ $# -eq 3 ] || { echo "usage: $0 repro TARGET FILE" >&2; exit 2; }
    install
    cargo fuzz run "${BUILD_FLAGS[@]}" "$2" "$(realpath "$3")" -- -runs=1
    ;;
build)
    build
    ;;
lint)
    log "rustfmt and clippy on fuzz/"
    (cd fuzz && cargo fmt --check && cargo clippy --all-targets --locked --quiet -- -D warnings)
    ;;
*)
    sed -n '2,30p' "$0" >&2
    exit 2
    ;;
esac
