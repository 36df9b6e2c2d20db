"""`af.export.export_reward_model(run, out)`: a trained reward run as a
Hugging Face folder that `AutoModelForSequenceClassification.from_pretrained`
and `AutoTokenizer.from_pretrained` load as they are (TRL's PPO / GRPO
trainers, reward-serving code; docs/reward.md, "Exporting a reward model").

The folder holds `config.json` (the decoder's architecture as its
`*ForSequenceClassification`, `num_labels` 1, `pad_token_id` set),
`model.safetensors` (the decoder with its LoRA adapter merged in by
`af.merge.merged_classifier`, and the reward head as `score.weight`),
`tokenizer.json` (the run's, byte for byte), `tokenizer_config.json` (the
special tokens, the pad token, right padding and the run's chat template),
`README.md`, and `arena_fast_export.json` (what was exported from which run,
the pad token and why, the tie parameter; `outputs.EXPORT_MARKER`). It is
built in a work directory beside `out` and renamed into place
(`files.publishing`).

Exact or refused: transformers' `score` is `Linear(h, num_labels,
bias=False)` on the last token that is not `pad_token_id`, so a head with a
bias that is not zero, the `mlp` head, a cross-encoder classifier (whose
input is arena_fast's own two-answer layout and whose head has a bias) and
an architecture without a `*ForSequenceClassification` are `ConfigError`s.

The pad token (`choose_pad`) is one no sequence of the run can end with:
transformers reads each sequence's *last token that is not the pad*, so a
pad equal to the token sequences end with (the EOS of the plain templates,
`<|eot_id|>` of Llama 3's chat template) would make it read the token
before. It is a special token of the tokenizer (text never encodes to it):
the tokenizer's own pad token when it qualifies, else the first special
token named like a pad / reserved / unused one.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Optional, Union

import safetensors.torch
import torch
from safetensors import SafetensorError
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

from ._core import __version__
from .chat_template import ChatTemplate
from .errors import ConfigError, InternalError
from .files import file_sha256, publishing
from .merge import merged_classifier
from .outputs import BUNDLE, EXPORT_MARKER, HEAD, TOKENIZER
from .runs import read_bundle, read_run_config
from .tokenizer import Tokenizer

__all__ = ["DTYPES", "EXPORT_MARKER", "choose_pad", "export_reward_model"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_WEIGHTS = "model.safetensors"
_TOKENIZER_CONFIG = "tokenizer_config.json"
_README = "README.md"
# Special tokens meant to fill or to stay unused, tried as the pad after the
# tokenizer's own pad token.
_PAD_LIKE = re.compile(r"pad|reserved|unused", re.IGNORECASE)
# Conversations rendered to learn which token a chat template ends a
# sequence with (one turn and two: the last answer closes both).
_PROBES = (
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
    [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ],
)


def export_reward_model(
    run: Union[str, os.PathLike],
    out: Union[str, os.PathLike],
    *,
    overwrite: bool = False,
    base_model: Optional[Union[str, os.PathLike]] = None,
    pad_token: Optional[str] = None,
    dtype: Optional[str] = None,
) -> dict:
    """Write the reward run `run` (a directory of `arena-fast train
    --objective reward`) to `out` as a Hugging Face sequence-classification
    folder (module docstring).

    Args:
        run: the trained reward run (every file checked against its
            `bundle.json`).
        out: the folder to write; refused when it exists and is not empty,
            unless `overwrite` and it is an earlier export (anything else is
            never replaced).
        base_model: the folder of the run's base model where it is now
            (`af.predict.load_run`).
        pad_token: the pad token to use instead of `choose_pad`'s (refused
            when it is not a special token or is one sequences end with).
        dtype: float32, bfloat16 or float16 for the weights (default: the
            dtype the run loads in here: float32 on the CPU).

    Returns `{"out", "architecture", "pad_token", "pad_token_id", "lora_r",
    "dtype", "files", "chat_template"}`.
    """
    run, out = Path(run), Path(out)
    if dtype is not None and dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    if not run.is_dir():
        raise ConfigError(f"{run}: not a training run directory")
    with publishing(out, "export", overwrite=overwrite, inputs=[run], inputs_name="run") as work:
        bundle, config = read_bundle(run), read_run_config(run)
        _check_objective(run, config)
        tokenizer = Tokenizer.from_file(run / TOKENIZER)
        chat = _chat_template(run, bundle, tokenizer)
        pad_id = choose_pad(
            run / TOKENIZER, tokenizer, _sequence_ends(bundle, tokenizer, chat), pad_token
        )
        _check_head_file(run)
        model, _ = merged_classifier(run, tokenizer, base_model)
        hf = _sequence_classifier(run, model, pad_id, dtype)
        architecture = type(hf).__name__
        _save(hf, work)
        shutil.copyfile(run / TOKENIZER, work / TOKENIZER)
        names = _special_names(bundle, tokenizer, pad_id)
        _write_json(work / _TOKENIZER_CONFIG, _tokenizer_config(names, chat))
        record = _record(run, config, bundle, model, architecture, names, pad_id, hf.dtype)
        files = sorted(p.name for p in work.iterdir()) + [_README, EXPORT_MARKER]
        record["files"] = sorted(files)
        (work / _README).write_text(_readme(record, chat is not None), encoding="utf-8")
        _write_json(work / EXPORT_MARKER, record)
        _check_tokenizer(work, pad_id, chat is not None)
    return {
        "out": out,
        "architecture": architecture,
        "pad_token": names["pad_token"],
        "pad_token_id": pad_id,
        "lora_r": config.lora_r,
        "dtype": str(hf.dtype).removeprefix("torch."),
        "files": record["files"],
        "chat_template": chat is not None,
    }


def _check_objective(run: Path, config) -> None:
    """A reward run of the linear head, or a ConfigError saying why not."""
    if not config.reward:
        raise ConfigError(
            f"{run}: a classifier run (objective {config.objective!r}); export writes reward "
            "models (objective reward): a cross-encoder reads arena_fast's own two-answer "
            "layout and its head has a bias that transformers' score layer lacks, so no "
            "sequence-classification folder would score like it"
        )
    if config.head != "linear":
        raise ConfigError(
            f"{run}: head {config.head!r}; transformers' score layer is one bias-free "
            "Linear(hidden, 1), so only a reward run of head 'linear' exports exactly"
        )


def _check_head_file(run: Path) -> None:
    """The head's tensors (read before any model is built): one score
    weight and the tie parameter, and a score bias only when it is zero."""
    path = run / HEAD
    try:
        head = safetensors.torch.load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise ConfigError(f"{path}: unreadable weights ({type(exc).__name__}: {exc})") from None
    extra = sorted(set(head) - {"score.weight", "score.bias", "tie.raw"})
    if extra or "score.weight" not in head:
        raise ConfigError(
            f"{path}: holds {extra[:3] or 'no score.weight'}; only a reward head of one "
            "Linear layer (score.weight) exports exactly"
        )
    bias = head.get("score.bias")
    if bias is not None and bool(bias.ne(0).any()):
        raise ConfigError(
            f"{path}: the reward head has a bias ({float(bias.flatten()[0]):.6g}), which "
            "transformers' score layer (Linear without bias) cannot hold; the exported "
            "model would score differently, so it is not written"
        )


def _chat_template(run: Path, bundle: dict, tokenizer: Tokenizer) -> Optional[ChatTemplate]:
    """The chat template the run's data was encoded with (the bundle's
    encoder records its Jinja source), or None."""
    source = (bundle.get("encoder") or {}).get("chat_template")
    if source is None:
        return None
    if not isinstance(source, str):
        raise ConfigError(f"{run / BUNDLE}: encoder.chat_template is not a string")
    special = {
        f"{w}_token": tokenizer.id_to_token(i)
        for w in ("bos", "eos")
        if (i := tokenizer.special_token_id(w, None)) is not None
    }
    return ChatTemplate.from_config({"chat_template": source, **special}, origin=str(run / BUNDLE))


def _sequence_ends(bundle: dict, tokenizer: Tokenizer, chat: Optional[ChatTemplate]) -> set[int]:
    """The ids a sequence of the run can end with: the EOS the encoder
    appends, and the last token the chat template writes after an answer."""
    ends = set()
    eos = (bundle.get("encoder") or {}).get("eos_token_id")
    if isinstance(eos, int):
        ends.add(eos)
    if chat is not None:
        for messages in _PROBES:
            ids = chat.encode(tokenizer, messages)
            if ids:
                ends.add(ids[-1])
    return ends


def _special_tokens(tokenizer_file: Path) -> dict[int, str]:
    """The special added tokens of a tokenizer.json, by id."""
    try:
        data = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{tokenizer_file}: not a readable tokenizer file: {exc}") from None
    added = data.get("added_tokens") if isinstance(data, dict) else None
    return {
        t["id"]: t["content"]
        for t in added or ()
        if isinstance(t, dict) and t.get("special") and isinstance(t.get("id"), int)
    }


def choose_pad(
    tokenizer_file: Path,
    tokenizer: Tokenizer,
    ends: set[int],
    pad_token: Optional[str] = None,
) -> int:
    """The pad id of an export: `pad_token` when given, else the
    tokenizer's own pad token, else the first special token (by id) named
    like a pad, reserved or unused one; always a special token of
    `tokenizer_file` (text never encodes to it), never the BOS and never
    one of `ends` (the ids sequences end with, which transformers' last-token
    pooling would then skip). ConfigError when none qualifies."""
    special = _special_tokens(tokenizer_file)
    bos = tokenizer.special_token_id("bos", None)
    barred = set(ends) | ({bos} if bos is not None else set())

    def why_not(tid: int) -> Optional[str]:
        if tid not in special:
            return "not a special token of the tokenizer (text could encode to it)"
        if tid in ends:
            return "a token the run's sequences end with"
        if tid == bos:
            return "the BOS token"
        return None

    if pad_token is not None:
        tid = tokenizer.token_to_id(pad_token)
        reason = "not in the vocabulary" if tid is None else why_not(tid)
        if reason:
            raise ConfigError(f"pad_token {pad_token!r} cannot pad this export: {reason}")
        return tid
    own = tokenizer.special_token_id("pad", None)
    if own is not None and why_not(own) is None:
        return own
    for tid in sorted(special):
        if tid not in barred and _PAD_LIKE.search(special[tid]):
            return tid
    raise ConfigError(
        f"{tokenizer_file}: no special token can pad the export (the tokenizer's pad token is "
        "missing or ends sequences, and no special token is named like a pad, reserved or "
        "unused one); pass pad_token= (--pad-token) naming a special token no sequence ends with"
    )


def _sequence_classifier(run: Path, model, pad_id: int, dtype: Optional[str]):
    """transformers' `*ForSequenceClassification` of the merged decoder,
    its `score.weight` the reward head's; refused unless it scores exactly
    as `model` does."""
    decoder = model.decoder
    config = copy.deepcopy(decoder.config)
    kind = config.model_type
    if kind not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        raise ConfigError(
            f"{run}: transformers has no sequence-classification model for {kind!r}; "
            "this architecture cannot be exported"
        )
    score = model.head.score
    if not isinstance(score, torch.nn.Linear):
        raise ConfigError(f"{run}: the reward head is not one Linear layer; it cannot be exported")
    for stale in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, stale):
            delattr(config, stale)
    config.num_labels = 1
    config.id2label, config.label2id = {0: "reward"}, {"reward": 0}
    config.pad_token_id = pad_id
    config.use_cache = True
    torch_dtype = DTYPES[dtype] if dtype else next(decoder.parameters()).dtype
    with torch.device("cpu"):
        hf = AutoModelForSequenceClassification.from_config(
            config, dtype=torch.float32, attn_implementation="eager"
        )
    body = getattr(hf, hf.base_model_prefix)
    state = {k: v.detach().to("cpu", torch.float32) for k, v in decoder.state_dict().items()}
    with torch.no_grad():
        missing, unexpected = body.load_state_dict(state, strict=False)
        hf.score.weight.copy_(score.weight.detach().to("cpu", torch.float32))
    if missing or unexpected:
        raise InternalError(
            f"{run}: the merged decoder does not fit {type(hf).__name__} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return hf.to(torch_dtype).eval()


def _save(hf, work: Path) -> None:
    """config.json and one model.safetensors, written directly (no
    progress bar, no shards: transformers loads one file of any size)."""
    hf.config.architectures = [type(hf).__name__]
    hf.config.dtype = hf.dtype
    hf.config.save_pretrained(work)
    state = {k: v.detach().contiguous() for k, v in hf.state_dict().items()}
    safetensors.torch.save_file(state, str(work / _WEIGHTS), metadata={"format": "pt"})


def _special_names(bundle: dict, tokenizer: Tokenizer, pad_id: int) -> dict[str, Optional[str]]:
    """The special tokens' names for tokenizer_config.json: BOS / EOS those
    the encoder used (else the tokenizer's), the chosen pad."""
    encoder = bundle.get("encoder") or {}
    names: dict[str, Optional[str]] = {}
    for which in ("bos", "eos"):
        tid = encoder.get(f"{which}_token_id")
        if not isinstance(tid, int):
            tid = tokenizer.special_token_id(which, None)
        names[f"{which}_token"] = None if tid is None else tokenizer.id_to_token(tid)
    names["pad_token"] = tokenizer.id_to_token(pad_id)
    return names


def _tokenizer_config(names: dict, chat: Optional[ChatTemplate]) -> dict:
    """tokenizer_config.json: the tokenizer.json as it is (no class of its
    own that would add tokens differently), right padding (positions count
    from each sequence's first token, as in training)."""
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **{k: v for k, v in names.items() if v is not None},
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
    }
    if chat is not None:
        config["chat_template"] = chat.source
    return config


def _record(run, config, bundle, model, architecture, names, pad_id, dtype) -> dict:
    """arena_fast_export.json: where the export came from and how."""
    tie = model.head.tie
    return {
        "written_by": "arena-fast export",
        "format_version": 1,
        "arena_fast": __version__,
        "run": str(run.resolve()),
        "run_bundle_sha256": file_sha256(run / BUNDLE),
        "base_model": (bundle.get("base_model") or {}).get("name", config.model),
        "architecture": architecture,
        "num_labels": 1,
        "label": "reward (higher is better)",
        "dtype": str(dtype).removeprefix("torch."),
        "lora_r": config.lora_r,
        "lora_merged": bool(config.lora_r),
        "dequantized": config.quantization if config.lora_r else None,
        "encoder": bundle.get("encoder"),
        "pad_token": names["pad_token"],
        "pad_token_id": pad_id,
        "padding_side": "right",
        "tie_model": config.tie_model,
        "tie_theta": float(tie.theta.detach()),
        "tie_prob_of_equal_rewards": tie.tie_prob_of_equal_rewards(),
    }


def _readme(record: dict, chat: bool) -> str:
    inputs = (
        "Each sequence is a conversation (the prompt turns and one answer) in the "
        "tokenizer's chat template, as the model was trained: `ids = "
        "[tok.apply_chat_template(messages, tokenize=True, return_dict=True)['input_ids'] "
        "for messages in chats]`."
        if chat
        else "The model was trained on arena_fast's own prompt template, not a chat "
        "template: make the ids as its encoder does (`encoder` in `arena_fast_export.json`: "
        "`af.Encoder.from_config(af.Tokenizer.from_file(DIR), encoder)`, layout separate: "
        "the prompt and one answer per sequence, BOS first and EOS last)."
    )
    lora = str(record["lora_merged"])
    if record["dequantized"]:
        lora += f" (into the de-quantised {record['dequantized']} base)"
    return f"""# Reward model exported by arena-fast

A Bradley-Terry reward model trained by arena_fast (`arena-fast train
--objective reward`) and exported by `arena-fast export` {record["arena_fast"]}:
a `{record["architecture"]}` with one output, the reward of the sequence (higher is
better; only differences between rewards mean something).

- Source run: `{record["run"]}` (bundle.json sha256 `{record["run_bundle_sha256"]}`)
- Base model: `{record["base_model"]}`; LoRA merged into the weights: {lora}
- Weights: {record["dtype"]}

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer
model = AutoModelForSequenceClassification.from_pretrained(DIR)
tok = AutoTokenizer.from_pretrained(DIR)
ids = ...  # one list of token ids per sequence: see below
batch = tok.pad({{"input_ids": ids}}, return_tensors="pt")  # pads on the right
rewards = model(**batch).logits[:, 0]
```

{inputs}

Padding: `pad_token` is `{record["pad_token"]}` (id {record["pad_token_id"]}), a special
token no sequence of this model ends with, because transformers reads each
sequence's last token that is not the pad. Pad on the right (the tokenizer's
default here): positions count from each sequence's first token, as in training.

Ties: the run's {record["tie_model"]} tie parameter is theta =
{record["tie_theta"]:.6g} (P(tie) of two equal rewards {record["tie_prob_of_equal_rewards"]:.4f});
transformers has no place for it, so it is recorded in `arena_fast_export.json`.
"""


def _check_tokenizer(work: Path, pad_id: int, chat: bool) -> None:
    """The written tokenizer loads with transformers, pads with `pad_id`,
    and its chat template does not end a sequence with the pad."""
    try:
        tok = AutoTokenizer.from_pretrained(work)
    except (OSError, ValueError) as exc:
        raise InternalError(f"{work}: the exported tokenizer does not load: {exc}") from None
    if tok.pad_token_id != pad_id:
        raise InternalError(
            f"{work}: the exported tokenizer pads with {tok.pad_token_id}, not {pad_id}"
        )
    if chat:
        for messages in _PROBES:
            ids = tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
            if ids and ids[-1] == pad_id:
                raise InternalError(f"{work}: the chat template ends a sequence with the pad")


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
