"""`af.model`: a decoder-only transformer (Gemma 2 / 3, Llama, Qwen 2 / 3,
Mistral, Phi-3, or any other `AutoModel` loads) with a preference head, for
packed and padded batches alike, with LoRA / QLoRA through peft and
bitsandbytes (the `[train]` extra; torch is imported here, not by
`import arena_fast`).

The head reads the hidden state of each sequence's last token at the
collators' `last_index` (docs/packing.md), so it never looks for
`pad_token_id` (which breaks on packed rows, and where pad == eos). The
presets of `TINY` (`tiny-gemma2`, `tiny-llama`, ... one per family) are small
randomly initialised configs sized to a tokenizer, so everything runs
offline on a CPU.

    model = af.model.load_classifier("tiny-gemma2", tokenizer=tok, lora={"r": 8})
    logits = model(batch)  # (k, 3) for the k sequences of a packed or padded batch

A reward model is the same classifier with a `RewardHead` (`set_reward`):
one reward per sequence, (k, 1), and a learned tie parameter (docs/reward.md).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch
from transformers import AutoConfig, AutoModel, PretrainedConfig

from .base_model import (
    TINY_GEMMA2,
    TINY_GEMMA3,
    TINY_LLAMA,
    TINY_MISTRAL,
    TINY_PHI3,
    TINY_QWEN2,
    TINY_QWEN3,
)
from .errors import ConfigError
from .labels import space_of_width
from .reward_losses import TieModel
from .tokenizer import Tokenizer
from .torch.attention import register
from .torch.packed import last_hidden
from .torch.quant import bnb_config, check_support, keep_cpu_layout, quantized
from .train_config import (
    HEADS,
    MAX_LORA_ALPHA,
    MAX_LORA_R,
    MAX_SEED,
    QUANTIZATION,
    Bounds,
    TrainConfig,
    check_setting,
)

REWARD_WIDTH = 1  # a reward model's head: one scalar per sequence

__all__ = [
    "TINY",
    "Lora",
    "ArenaClassifier",
    "RewardHead",
    "load_classifier",
    "classifier_for",
    "tiny_config",
    "default_attention",
]

# Small configs for tests and the demo, one per architecture family: 2 layers,
# 64 wide, 4 query heads of 16 sharing 2 kv heads (GQA), each with what sets
# its family's attention apart (a 2-layer, 64-wide Gemma-2 learns the synth
# keyword rule in seconds on a CPU). `tiny_config` sizes them to a tokenizer.
_SMALL = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    intermediate_size=128,
    max_position_embeddings=8192,
)
TINY = {
    TINY_GEMMA2: dict(
        _SMALL,
        model_type="gemma2",
        query_pre_attn_scalar=16,
        sliding_window=256,  # on alternate layers
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
    ),
    # Gemma 3 (text): q/k norms, no soft-capping, a sliding layer then a full
    # one (Gemma 3 interleaves five to one), and a query scale that is not
    # 1/sqrt(head_dim) (as Gemma 3 27B's).
    TINY_GEMMA3: dict(
        _SMALL,
        model_type="gemma3_text",
        query_pre_attn_scalar=32,
        sliding_window=256,
        layer_types=["sliding_attention", "full_attention"],
    ),
    TINY_LLAMA: dict(_SMALL, model_type="llama"),
    # Qwen 2: q/k/v biases; its window is off, as in Qwen 2.5's configs.
    TINY_QWEN2: dict(_SMALL, model_type="qwen2", use_sliding_window=False),
    # Qwen 3: q/k norms on the head dimension, no biases.
    TINY_QWEN3: dict(_SMALL, model_type="qwen3", use_sliding_window=False),
    # Mistral: one sliding window on every layer (Mistral 7B v0.1's).
    TINY_MISTRAL: dict(_SMALL, model_type="mistral", sliding_window=256),
    # Phi-3: fused qkv and gate/up projections.
    TINY_PHI3: dict(_SMALL, model_type="phi3", sliding_window=None),
}


@dataclass(frozen=True)
class Lora:
    """LoRA settings (peft). `target_modules="all-linear"` adapts every linear
    layer of the decoder; the head is always trained in full."""

    r: int = 16
    alpha: float = 32
    dropout: float = 0.05
    target_modules: Union[str, Sequence[str]] = "all-linear"

    def __post_init__(self) -> None:
        # The same ranges as TrainConfig's lora_* settings (a ConfigError
        # before peft allocates anything).
        check_setting("lora r", self.r, int, Bounds(1, MAX_LORA_R))
        check_setting("lora alpha", self.alpha, float, Bounds(0, MAX_LORA_ALPHA, low_open=True))
        check_setting("lora dropout", self.dropout, float, Bounds(0, 1, high_open=True))
        targets = self.target_modules
        names = [targets] if isinstance(targets, str) else list(targets)
        if not names or not all(isinstance(t, str) and t for t in names):
            raise ConfigError(
                f"lora target_modules must be 'all-linear' or module names, got {targets!r:.60}"
            )

    @classmethod
    def of(cls, value: Union[None, bool, Mapping, Lora]) -> Optional[Lora]:
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, Lora):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ConfigError(f"unknown LoRA settings {sorted(unknown)}")
            return cls(**value)
        raise ConfigError(f"lora must be None, True, a dict or an af.model.Lora, got {value!r}")


def default_attention() -> str:
    """flash-attn's varlen kernel on CUDA when installed, else `arena_varlen`
    (per-sequence sdpa; exact for packs on any device)."""
    if torch.cuda.is_available():
        try:
            import flash_attn  # noqa: F401 (optional: tried only where it could run)

            return "flash_attention_2"
        except ImportError:
            pass
    return register()


def _head_layers(kind: str, hidden_size: int, width: int, bias: bool = True) -> torch.nn.Module:
    """`linear` (Linear(h, width)) or `mlp` (the 2nd place's
    Dropout-Linear(h, h/2)-GELU-Linear(h/2, width)), from the torch RNG;
    `bias` False leaves the last Linear without one."""
    if kind == "linear":
        return torch.nn.Linear(hidden_size, width, bias=bias)
    h = hidden_size
    return torch.nn.Sequential(
        torch.nn.Dropout(0.1),
        torch.nn.Linear(h, h // 2),
        torch.nn.GELU(),
        torch.nn.Linear(h // 2, width, bias=bias),
    )


class RewardHead(torch.nn.Module):
    """A reward model's head: `score`, the layers of a classifier's head
    one output wide and without a last bias (the reward of each sequence,
    (k, 1)), and `tie`, the
    learned tie parameter (`af.reward_losses.TieModel`, one float32
    parameter `tie.raw`) that turns a pair's two rewards into P(A), P(B),
    P(tie). Both are in the head's state dict, so they are saved with the
    head (`head.safetensors`: `score.*` and `tie.raw`) and checkpointed and
    resumed with it. `tie_model` "none" (Bradley-Terry rewards) keeps a
    Davidson parameter too, fitted to the rewards without moving them
    (`af.objectives`), so its runs give tie probabilities as well."""

    def __init__(self, kind: str, hidden_size: int, tie_model: str = "davidson"):
        super().__init__()
        # No bias: a constant added to every reward changes no probability
        # and gets no gradient, and transformers' `score` layer has none
        # (`arena-fast export` writes the head as it is).
        self.score = _head_layers(kind, hidden_size, REWARD_WIDTH, bias=False)
        self.tie = TieModel("davidson" if tie_model == "none" else tie_model)
        self.tie_model = tie_model

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.score(hidden)  # (k, 1)


class ArenaClassifier(torch.nn.Module):
    """A decoder (possibly LoRA-wrapped) and a head on each sequence's last
    token: `linear` (Linear(h, K)) or `mlp` (the 2nd place's
    Dropout-Linear(h, h/2)-GELU-Linear(h/2, K)), K `num_classes` (the label
    space's: 2 ab, 3 abt, 4 abtx; `af.labels`). A reward model is the same
    module with a `RewardHead` (`set_reward`): `num_classes` 1, its output
    (k, 1) the reward of each sequence. The head runs in float32."""

    def __init__(
        self,
        decoder: torch.nn.Module,
        hidden_size: int,
        head: str = "linear",
        num_classes: int = 3,
    ):
        super().__init__()
        if head not in HEADS:
            raise ConfigError(f"head must be one of {HEADS}, got {head!r}")
        self.decoder = decoder
        self.head_kind = head
        self.hidden_size = hidden_size
        self.set_classes(num_classes)

    @property
    def is_reward(self) -> bool:
        """Whether the head is a reward model's (`set_reward`)."""
        return isinstance(getattr(self, "head", None), RewardHead)

    def set_classes(self, num_classes: int) -> None:
        """A new head of `num_classes` outputs (newly initialised from the
        torch RNG), unless the head already has that many. `num_classes` is
        a label space's width (2, 3 or 4); a reward model's scalar head is
        `set_reward`'s."""
        space_of_width(num_classes, "num_classes")
        if getattr(self, "num_classes", None) == num_classes and not self.is_reward:
            return
        self.num_classes = num_classes
        self._place(_head_layers(self.head_kind, self.hidden_size, num_classes))

    def set_reward(self, tie_model: str = "davidson") -> None:
        """A reward model's head (`RewardHead`, newly initialised from the
        torch RNG): one reward per sequence and the tie parameter of
        `tie_model` (davidson, rao_kupper, or none: a Davidson one fitted
        beside Bradley-Terry rewards)."""
        self.num_classes = REWARD_WIDTH
        self._place(RewardHead(self.head_kind, self.hidden_size, tie_model))

    def _place(self, head: torch.nn.Module) -> None:
        self.head = head.to(torch.float32)
        device = getattr(self.decoder, "device", None)
        if isinstance(device, torch.device) and device.type != "cpu":
            self.head.to(device)

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Logits (k, K) for the k sequences of a packed or padded batch, in
        batch order (a reward model's: rewards (k, 1))."""
        hidden = last_hidden(self.decoder, batch)
        return self.head(hidden.float())

    def trainable_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    @property
    def pad_id(self) -> int:
        """The token id that fills padded batches: the decoder config's
        `pad_token_id`, else its `eos_token_id` (the usual stand-in; the tiny
        models have no pad token), else 0. Which id it is never reaches the
        logits: padding is masked, after each row's last token, and the head
        reads that token (`last_index`)."""
        config = self.decoder.config
        vocab = getattr(config, "vocab_size", None)
        for value in (config.pad_token_id, getattr(config, "eos_token_id", None)):
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                if not isinstance(vocab, int) or value < vocab:
                    return value
        return 0


def tiny_config(name: str, tokenizer: Any = None, **overrides: Any) -> PretrainedConfig:
    """The transformers config of the preset `name` (`TINY`), sized to
    `tokenizer` (an `af.Tokenizer`, default the bundled demo one), with the
    BOS / EOS ids it declares (`Tokenizer.special_token_id`, from its
    tokenizer_config.json). `overrides` replace preset fields (e.g.
    `sliding_window=8`, `attn_implementation="sdpa"`). No pad token: the
    head reads each sequence's last token (`last_index`), never
    `pad_token_id`, and a pad id would freeze its embedding row."""
    if name not in TINY:
        raise ConfigError(f"unknown preset {name!r}; the presets are {tuple(TINY)}")
    if tokenizer is None:
        tokenizer = Tokenizer.demo()
    kw = {**TINY[name], **overrides}
    kind = kw.pop("model_type")
    special = getattr(tokenizer, "special_token_id", None)
    ids = {f"{w}_token_id": special(w, None) if special else None for w in ("bos", "eos")}
    return AutoConfig.for_model(
        kind, vocab_size=_vocab_size(tokenizer), pad_token_id=None, **ids, **kw
    )


def _vocab_size(tokenizer: Any) -> int:
    if tokenizer is None:
        tokenizer = Tokenizer.demo()
    size = getattr(tokenizer, "vocab_size", None)
    if not isinstance(size, int) or size < 1:
        raise ConfigError("tokenizer must be an af.Tokenizer (its vocab_size sizes the model)")
    return size


def _quantization_config(quantization: Optional[str], dtype: torch.dtype) -> Any:
    if quantization is None:
        return None
    if quantization not in QUANTIZATION:
        raise ConfigError(f"quantization must be one of {QUANTIZATION}, got {quantization!r}")
    # bitsandbytes quantises on CUDA, and on the CPU since its CPU backend
    # (af.torch.quant.BNB_MIN_VERSION): refused, naming the version, otherwise.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    check_support(quantization, device)
    return bnb_config(quantization, dtype, device)


def load_classifier(
    name_or_path: str,
    *,
    tokenizer: Any = None,
    lora: Union[None, bool, Mapping, Lora] = None,
    quantization: Optional[str] = None,
    attn_implementation: Optional[str] = None,
    head: str = "linear",
    softcap: bool = True,
    dtype: Optional[torch.dtype] = None,
    gradient_checkpointing: bool = False,
    seed: int = 0,
) -> ArenaClassifier:
    """A preference classifier.

    Args:
        name_or_path: a preset of `TINY` (`tiny-gemma2`, `tiny-gemma3`,
            `tiny-llama`, `tiny-qwen2`, `tiny-qwen3`, `tiny-mistral`,
            `tiny-phi3`: random, sized to `tokenizer`, `tiny_config`), or a
            local folder of any decoder-only model `AutoModel` loads (packed
            batches for the types `arena_fast.torch.packed.PACKABLE` lists,
            padded ones for the others). Nothing is downloaded.
        tokenizer: an `af.Tokenizer`; sizes the tiny models (default: the
            bundled demo tokenizer).
        lora: None (full fine-tuning), True (defaults), a dict or `Lora`.
        quantization: None, "4bit" (QLoRA: nf4, double quantisation; bf16
            compute on CUDA, `dtype` on the CPU) or "8bit" (LLM.int8()), with
            bitsandbytes on CUDA or on the CPU (`af.torch.quant`), the tiny
            models included (their random weights quantised).
        attn_implementation: None picks `default_attention()`; "sdpa" / "eager"
            work with padded batches and with packs (through position ids).
        head: "linear" or "mlp".
        softcap: False turns Gemma-2's attention logit soft-capping off.
        dtype: parameter dtype (default float32 on the CPU, bfloat16 on CUDA).
        gradient_checkpointing: recompute activations in the backward pass.
        seed: initialises the tiny models and the head.
    """
    if head not in HEADS:
        raise ConfigError(f"head must be one of {HEADS}, got {head!r}")
    check_setting("seed", seed, int, Bounds(0, MAX_SEED))
    lora_cfg = Lora.of(lora)
    if dtype is None:
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    attn = attn_implementation or default_attention()
    if attn == "arena_varlen":
        register()
    quant = _quantization_config(quantization, dtype)
    # One seed for every random start, drawn in this order: the decoder (the
    # tiny models), LoRA's A matrices, the head.
    torch.manual_seed(seed)
    decoder = _decoder(name_or_path, tokenizer, quant, attn, softcap, dtype)
    if quant is not None:
        keep_cpu_layout(decoder)
    decoder.config.use_cache = False
    if gradient_checkpointing:
        _recompute_activations(decoder)
    if lora_cfg is not None:
        decoder = _with_lora(decoder, lora_cfg, quant, gradient_checkpointing)
    model = ArenaClassifier(decoder, decoder.config.get_text_config().hidden_size, head)
    model.head.to(torch.float32)
    if decoder.device.type != "cpu":
        model.head.to(decoder.device)
    return model


def _decoder(
    name_or_path: str, tokenizer: Any, quant: Any, attn: str, softcap: bool, dtype: torch.dtype
) -> torch.nn.Module:
    """The bare decoder: a tiny model made from its config, or a local
    folder's weights (nothing is downloaded)."""
    if name_or_path in TINY:
        config = tiny_config(name_or_path, tokenizer, attn_implementation=attn)
        if not softcap and getattr(config, "attn_logit_softcapping", None) is not None:
            config.attn_logit_softcapping = None
        try:
            decoder = AutoModel.from_config(config, dtype=dtype)
        except ValueError as exc:  # e.g. an attention the architecture lacks
            raise ConfigError(f"{name_or_path} with attn_implementation={attn!r}: {exc}") from exc
        # Quantised as a folder's weights are (af.torch.quant.quantized).
        return decoder if quant is None else quantized(decoder, quant, dtype)
    if not os.path.isdir(name_or_path):
        raise ConfigError(
            f"{name_or_path}: not a model folder, and not one of {tuple(TINY)}; "
            "arena_fast loads local folders only (nothing is downloaded)"
        )
    config = AutoConfig.from_pretrained(name_or_path)
    if getattr(config, "is_encoder_decoder", False):
        raise ConfigError(
            f"{name_or_path}: a {config.model_type} encoder-decoder; arena_fast's classifier "
            "reads a decoder-only model's last token"
        )
    if not softcap and hasattr(config, "attn_logit_softcapping"):
        config.attn_logit_softcapping = None
    try:
        return AutoModel.from_pretrained(
            name_or_path,
            config=config,
            dtype=dtype,
            attn_implementation=attn,
            quantization_config=quant,
        )
    except ValueError as exc:  # e.g. an attention the architecture lacks
        raise ConfigError(f"{name_or_path} with attn_implementation={attn!r}: {exc}") from exc


def _recompute_activations(decoder: torch.nn.Module) -> None:
    """Gradient checkpointing on: activations recomputed in the backward pass."""
    # transformers 5 renamed it (and its argument); older ones have the first.
    kwargs = {"use_reentrant": False}
    if hasattr(decoder, "activation_checkpointing_enable"):
        decoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        decoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _with_lora(
    decoder: torch.nn.Module, lora: Lora, quant: Any, gradient_checkpointing: bool
) -> torch.nn.Module:
    """`decoder` wrapped in peft's LoRA adapters (prepared for k-bit training
    first when quantised)."""
    # peft is imported here, not at the top: importing it imports
    # bitsandbytes when installed (seconds; its CPU-kernel notice is filtered
    # above), and only LoRA runs need it.
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quant is not None:
        decoder = prepare_model_for_kbit_training(
            decoder, use_gradient_checkpointing=gradient_checkpointing
        )
    target = lora.target_modules
    peft_cfg = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target if isinstance(target, str) else list(target),
        bias="none",
    )
    with warnings.catch_warnings():
        # peft asks transformers 5 for a property it deprecated; not ours to fix.
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
        )
        return get_peft_model(decoder, peft_cfg)


def classifier_for(config: TrainConfig, tokenizer: Any, num_classes: int = 3) -> ArenaClassifier:
    """The classifier a run's settings describe, before training: the same
    call for training and for rebuilding a run (`load_classifier` with the
    LoRA settings `config` asks for, or none when `lora_r` is 0), its head
    `num_classes` wide (the dataset's label space; a head of another width
    than 3 is drawn after the decoder, from the same seeded RNG), or for a
    reward run (`config.objective` "reward") a `RewardHead` with
    `config.tie_model`'s tie parameter, drawn after the decoder too."""
    lora = (
        Lora(
            r=config.lora_r,
            alpha=config.lora_alpha,
            dropout=config.lora_dropout,
            target_modules=config.lora_target_modules(),
        )
        if config.lora_r
        else None
    )
    model = load_classifier(
        config.model,
        tokenizer=tokenizer,
        lora=lora,
        quantization=config.quantization,
        attn_implementation=config.attn_implementation,
        head=config.head,
        softcap=config.softcap,
        gradient_checkpointing=config.gradient_checkpointing,
        seed=config.seed,
    )
    if config.reward:
        model.set_reward(config.tie_model)
    else:
        model.set_classes(num_classes)
    return model
