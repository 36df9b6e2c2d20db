"""Reference: rows of turns -> token ids, from the spec in docs/encoding.md.

Layout of a row: [BOS] + begin + per kept turn (header, then for prompt, A, B:
segment + suffix) + end + [EOS]. A segment is `tok(prefix) + tok(text)`
(split) or `tok(prefix + text)` (joint); its first len(tok(prefix)) tokens are
never cut by `fair` / `drop_oldest`. Template strings keep special tokens
special; user text follows `split_special_tokens`.

Separate layout: each row gives two, [BOS] + begin + per kept turn (header,
prompt segment + prompt suffix, answer segment + A's suffix) + end + [EOS],
with answer A (row 2i) and answer B (row 2i+1), both segments built with the
prompt's and A's prefix. Each side is planned alone as a three-field turn
whose third field is empty (the `fourth_place` answer share being A's and
B's shares together), then `budget.share_prompt` makes the shared prompt
turns the same on both. `strip` strips prompt / answer texts first (Python's
`str.strip`, what a chat template's `| trim` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

from ..encoded import REPAIR_NULL, Encoded
from ..encoder import Template
from .budget import Budget, Frame, plan, share_prompt
from .turns import pad_and_clip, parse_turn_list, repair_text


class ReferenceEncoder:
    """Same options as `af.Encoder`, with a `tokenizers.Tokenizer` inside."""

    def __init__(
        self,
        tokenizer_json: str,
        template: Union[str, Template] = "rounds",
        strategy: str = "fair",
        max_length: int = 2048,
        tokenize: str = "split",
        bos_token_id: Optional[int] = None,
        eos_token_id: Optional[int] = None,
        split_special_tokens: bool = True,
        null_text: str = "",
        prompt_weight: float = 0.5,
        min_segment_tokens: int = 32,
        keep: str = "head",
        keep_first_turns: int = 0,
        tail_ratios: Sequence[float] = (0.2, 0.4, 0.4),
        min_tail_tokens: int = 80,
        layout: str = "cross",
        strip: tuple[bool, bool] = (False, False),
    ):
        from tokenizers import Tokenizer as HFTokenizer

        self.markup_tok = HFTokenizer.from_str(tokenizer_json)
        self.markup_tok.encode_special_tokens = False
        self.text_tok = HFTokenizer.from_str(tokenizer_json)
        self.text_tok.encode_special_tokens = split_special_tokens
        for tok in (self.markup_tok, self.text_tok):
            # The budget is the encoder's; a tokenizer.json may carry its own.
            tok.no_truncation()
            tok.no_padding()
        self.template = Template.preset(template) if isinstance(template, str) else template
        self.joint = tokenize == "joint"
        self.bos, self.eos = bos_token_id, eos_token_id
        self.null_text = null_text
        self.budget = Budget(
            max_length,
            strategy,
            prompt_weight,
            min_segment_tokens,
            keep,
            keep_first_turns,
            tuple(tail_ratios),
            min_tail_tokens,
        )
        self.layout, self.strip = layout, strip
        r = self.budget.tail_ratios
        self.side_budget = Budget(**{**vars(self.budget), "tail_ratios": (r[0], r[1] + r[2], 0.0)})
        t = self.template
        self.begin, self.end = self.markup(t.begin), self.markup(t.end)
        self.prefixes = [self.markup(s) for s in t.prefixes]
        self.suffixes = [self.markup(s) for s in t.suffixes]
        self.marker = self.markup(t.marker)
        self.fixed = (
            (self.bos is not None) + len(self.begin) + len(self.end) + (self.eos is not None)
        )

    def markup(self, text: str) -> list[int]:
        return self.markup_tok.encode(text, add_special_tokens=False).ids if text else []

    def text(self, text: str) -> list[int]:
        return self.text_tok.encode(text, add_special_tokens=False).ids if text else []

    # -- rows ----------------------------------------------------------------
    def row_turns(self, prompt, a, b) -> tuple[list[list[str]], int]:
        flags = 0
        fields = []
        for cell in (prompt, a, b):
            if cell is None:
                cell, flags = [], flags | REPAIR_NULL
            elif isinstance(cell, str):
                cell = [cell]
            elif isinstance(cell, (dict, set, frozenset, bytes)):
                raise ValueError(f"expected a list of turns, got {type(cell).__name__}")
            turns = []
            for item in cell:
                if item is None:
                    turns.append(self.null_text)
                    flags |= REPAIR_NULL
                else:
                    text, f = repair_text(item)
                    turns.append(text)
                    flags |= f
            fields.append(turns)
        fields, f = pad_and_clip(fields)
        return fields, flags | f

    def encode_row(
        self, fields: list[list[str]], swapped: bool
    ) -> tuple[list[int], int, bool, int]:
        t = self.template
        n_total = len(fields[0])
        if t.join_turns is not None:
            turns = [[t.join_turns.join(x) for x in fields]] if n_total else []
        else:
            turns = [[fields[f][i] for f in range(3)] for i in range(n_total)]
        order = (0, 2, 1) if swapped else (0, 1, 2)
        segs = []
        for texts in turns:
            row = []
            for f in range(3):
                text = texts[order[f]]
                if self.joint:
                    row.append(self.text(t.prefixes[f] + text))
                else:
                    row.append(self.prefixes[f] + self.text(text))
            segs.append(row)
        headers = [len(self.markup(t.header_text(k))) for k in range(1, len(segs) + 1)]
        frame = Frame(self.fixed, headers, tuple(len(s) for s in self.suffixes), len(self.marker))
        protect = tuple(len(p) for p in self.prefixes)
        p = plan(self.budget, frame, [([len(s) for s in row], protect) for row in segs])
        body = []
        for pos, (i, cuts) in enumerate(p.turns, start=1):
            body += self.markup(t.header_text(pos))
            for f in range(3):
                seg = segs[i][f]
                if cuts[f] is None:
                    body += seg
                else:
                    head, tail = cuts[f]
                    body += seg[:head] + self.marker + seg[len(seg) - tail :]
                body += self.suffixes[f]
        if p.body_limit is not None:
            body = body[: p.body_limit]
        ids = ([self.bos] if self.bos is not None else []) + self.begin + body + self.end
        ids += [self.eos] if self.eos is not None else []
        kept = n_total if (t.join_turns is not None and p.turns_kept) else p.turns_kept
        # What the row would take with nothing cut: every header, segment, suffix.
        full = self.fixed + sum(headers)
        full += sum(len(seg) + len(self.suffixes[f]) for row in segs for f, seg in enumerate(row))
        return ids, kept, p.truncated, full

    def _turn_texts(self, fields):
        t = self.template
        if t.join_turns is not None:
            return [[t.join_turns.join(x) for x in fields]] if fields[0] else []
        return [[fields[f][i] for f in range(3)] for i in range(len(fields[0]))]

    def _segment(self, f: int, text: str) -> list[int]:
        if self.strip[min(f, 1)]:
            text = text.strip()
        if self.joint:
            return self.text(self.template.prefixes[f] + text)
        return self.prefixes[f] + self.text(text)

    def encode_sides(self, fields: list[list[str]]) -> list[tuple[list[int], int, bool, int]]:
        """The separate layout: (ids, kept, truncated, full) of prompt + A and
        of prompt + B."""
        t = self.template
        n_total = len(fields[0])
        turns = self._turn_texts(fields)
        prompts = [self._segment(0, texts[0]) for texts in turns]
        answers = [[self._segment(1, texts[src]) for texts in turns] for src in (1, 2)]
        headers = [len(self.markup(t.header_text(k))) for k in range(1, len(turns) + 1)]
        suffix = (len(self.suffixes[0]), len(self.suffixes[1]), 0)
        frame = Frame(self.fixed, headers, suffix, len(self.marker))
        protect = (len(self.prefixes[0]), len(self.prefixes[1]), 0)
        lens = [
            [([len(p), len(x), 0], protect) for p, x in zip(prompts, answers[s])] for s in (0, 1)
        ]
        plans = [plan(self.side_budget, frame, lens[s]) for s in (0, 1)]
        share_prompt(plans, lens, frame.marker)
        out = []
        for s, p in enumerate(plans):
            body = []
            for pos, (i, cuts) in enumerate(p.turns, start=1):
                body += self.markup(t.header_text(pos))
                for f, seg in enumerate((prompts[i], answers[s][i])):
                    if cuts[f] is None:
                        body += seg
                    else:
                        head, tail = cuts[f]
                        body += seg[:head] + self.marker + seg[len(seg) - tail :]
                    body += self.suffixes[f]
            if p.body_limit is not None:
                body = body[: p.body_limit]
            ids = ([self.bos] if self.bos is not None else []) + self.begin + body + self.end
            ids += [self.eos] if self.eos is not None else []
            kept = n_total if (t.join_turns is not None and p.turns_kept) else p.turns_kept
            full = self.fixed + sum(headers) + sum(seg[0] + seg[1] for seg, _ in lens[s])
            full += len(turns) * (suffix[0] + suffix[1])
            out.append((ids, kept, p.truncated, full))
        return out

    def _encode_fields(self, rows, swap) -> Encoded:
        if self.layout == "separate" and swap is not False:
            raise ValueError("swap must be False in the separate layout")
        variants = {False: (False,), True: (True,), "both": (False, True)}[swap]
        ids, offsets = [], [0]
        cols = {k: [] for k in ("turns_total", "turns_kept", "truncated", "full_length", "repairs")}
        cols.update(is_swapped=[], source_row=[])
        for r, (fields, flags) in enumerate(rows):
            sides = self.encode_sides(fields) if self.layout == "separate" else None
            for swapped in (False, True) if sides else variants:
                if sides:
                    row_ids, kept, truncated, full = sides[swapped]
                else:
                    row_ids, kept, truncated, full = self.encode_row(fields, swapped)
                ids += row_ids
                offsets.append(len(ids))
                cols["turns_total"].append(len(fields[0]))
                cols["turns_kept"].append(kept)
                cols["truncated"].append(truncated)
                cols["full_length"].append(full)
                cols["repairs"].append(flags)
                cols["is_swapped"].append(swapped)
                cols["source_row"].append(r)
        return Encoded(
            dict(
                input_ids=np.asarray(ids, dtype=np.int32),
                offsets=np.asarray(offsets, dtype=np.int64),
                turns_total=np.asarray(cols["turns_total"], dtype=np.int32),
                turns_kept=np.asarray(cols["turns_kept"], dtype=np.int32),
                truncated=np.asarray(cols["truncated"], dtype=bool),
                full_length=np.asarray(cols["full_length"], dtype=np.int64),
                repairs=np.asarray(cols["repairs"], dtype=np.uint8),
                is_swapped=np.asarray(cols["is_swapped"], dtype=bool),
                source_row=np.asarray(cols["source_row"], dtype=np.int64),
            )
        )

    def encode(self, prompts, responses_a, responses_b, swap=False) -> Encoded:
        rows = [self.row_turns(p, a, b) for p, a, b in zip(prompts, responses_a, responses_b)]
        return self._encode_fields(rows, swap)

    def encode_json(self, prompts, responses_a, responses_b, swap=False) -> Encoded:
        rows = []
        for p, a, b in zip(prompts, responses_a, responses_b):
            fields, flags = [], 0
            for cell in (p, a, b):
                if cell is None:  # an empty list, flagged (docs/encoding.md)
                    fields.append([])
                    flags |= REPAIR_NULL
                    continue
                cell, f0 = repair_text(cell)
                turns, f = parse_turn_list(cell, self.null_text)
                f |= f0
                fields.append(turns)
                flags |= f
            fields, f = pad_and_clip(fields)
            rows.append((fields, flags | f))
        return self._encode_fields(rows, swap)


def chat_template_strings(hf_tokenizer) -> tuple[dict, tuple[bool, bool]]:
    """The `Template` fields and strip flags of `template="chat"` for a
    transformers tokenizer, from the spec in docs/encoding.md ("Separate
    layout and chat templates"): a two-turn conversation of sentinels
    rendered by transformers (jinja2) gives the literals; padded sentinels
    tell whether contents are stripped; literals split at special tokens."""

    def render(turns) -> str:
        messages = []
        for p, a in turns:
            messages += [{"role": "user", "content": p}, {"role": "assistant", "content": a}]
        return hf_tokenizer.apply_chat_template(messages, tokenize=False)

    u0, a0, u1, a1 = "@@u0@@", "@@a0@@", "@@u1@@", "@@a1@@"
    text = render([(u0, a0), (u1, a1)])
    start, rest = text.split(u0)
    between, rest = rest.split(a0)
    next_turn, rest = rest.split(u1)
    _, finish = rest.split(a1)
    padded = render([(f"\n {u0} \t", f" {a0}\n\n")])
    strip = (f"\n {u0} \t" not in padded, f" {a0}\n\n" not in padded)
    specials = {t.content for t in hf_tokenizer.added_tokens_decoder.values() if t.special}

    def split(literal: str) -> tuple[str, str, str]:
        """(before the first special token, through the last, after it)."""
        hits = [
            (i, i + len(s))
            for s in specials
            for i in range(len(literal))
            if literal.startswith(s, i)
        ]
        if not hits:
            return "", "", literal
        first, last = min(h[0] for h in hits), max(h[1] for h in hits)
        return literal[:first], literal[first:last], literal[last:]

    s_head, s_core, _ = split(start)
    _, m_core, m_tail = split(between)
    _, j_core, j_tail = split(next_turn)
    fields = dict(
        begin=s_head + s_core,
        end=finish,
        first_header="",
        header=j_core,
        prompt_prefix=j_tail,
        prompt_suffix=m_core,
        a_prefix=m_tail,
        a_suffix="",
        b_prefix=m_tail,
        b_suffix="",
    )
    return fields, strip
