"""`af.train.TrainConfig`: the settings of a training run, each field with
its help text and, for numbers, the range it must lie in; and
`read_config_file`, the YAML file of settings that `arena-fast train --config`
reads.

Settings are untrusted wherever they come from (the command line, a YAML
file, a run's `config.json` read back by `predict`): `TrainConfig.validate`
checks every field's type and range before anything is allocated, and is the
one place those rules live. No torch here."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .base_model import PRESETS, TINY_GEMMA2
from .errors import ConfigError
from .files import read_capped
from .text import shown

__all__ = [
    "TrainConfig",
    "Bounds",
    "check_setting",
    "read_config_file",
    "HEADS",
    "OBJECTIVES",
    "QUANTIZATION",
    "TIE_MODELS",
    "MAX_LORA_R",
    "MAX_LR",
    "TRACKERS",
]

HEADS = ("linear", "mlp")
QUANTIZATION = (None, "4bit", "8bit")
LAYOUTS = ("auto", "packed", "padded")
SAVES = (None, "best", "last")
# What a run learns: a cross-encoder classifier (class logits of a row holding
# both answers) or a reward model (a scalar per answer, rows 2i / 2i+1 of a
# dataset of the separate layout; docs/reward.md).
OBJECTIVES = ("classify", "reward")
# How a reward model's loss treats ties: a Davidson or Rao-Kupper tie
# parameter (`af.reward_losses`), or none (Bradley-Terry, a tie half a win).
TIE_MODELS = ("davidson", "rao_kupper", "none")
TRACKERS = ("tensorboard", "wandb")  # what `report_to` may name (`af.tracking`)
# A rank past the decoder's width adds parameters and no expressiveness (the
# update is already full rank). 4096 is the width of the largest decoders
# trained here (Llama-3 8B; Gemma-2 9B is 3584), and it bounds what a
# corrupted run's config.json can make `predict` allocate.
MAX_LORA_R = 4096
MAX_LORA_ALPHA = 65536  # an alpha / r scale past this only diverges
# AdamW moves each weight by about lr per step: past 10 a run only diverges.
MAX_LR = 10.0
# Every epoch's plan is made up front.
MAX_EPOCHS = 10_000
MAX_SEED = 2**32 - 1  # what every consumer takes (numpy's RandomState is 32-bit)
MAX_CONFIG_BYTES = 1 << 20  # a settings file is a few lines
_MAX_YAML_DEPTH = 16  # settings are scalars; nesting is only ever a mistake


@dataclass(frozen=True)
class Bounds:
    """The closed or half-open interval a numeric setting must lie in
    (`high` None: no upper bound)."""

    low: float
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        if self.high is None:
            return above
        return above and (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        def num(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else f"{x:g}"

        if self.high is None:
            return f"{'>' if self.low_open else '>='} {num(self.low)}"
        return (
            f"in {'(' if self.low_open else '['}{num(self.low)}, {num(self.high)}"
            f"{')' if self.high_open else ']'}"
        )


def _help(text: str, default: Any, bounds: Optional[Bounds] = None) -> Any:
    return field(default=default, metadata={"help": text, "bounds": bounds})


_POSITIVE = Bounds(0, None, low_open=True)
_AT_LEAST_1 = Bounds(1)
_SHARE = Bounds(0, 1, high_open=True)


@dataclass
class TrainConfig:
    """Everything a training run depends on; each field carries its help and,
    for numbers, its range (`validate` checks both)."""

    data: str = _help("a dataset directory written by `arena-fast build-dataset`", "")
    fold: Optional[int] = _help(
        "held-out fold (None: train on every row, no evaluation)", 0, Bounds(0)
    )
    model: str = _help(f"{', '.join(PRESETS)} or a local model folder", TINY_GEMMA2)
    lora_r: int = _help("LoRA rank (0: train every weight)", 0, Bounds(0, MAX_LORA_R))
    lora_alpha: int = _help(
        "LoRA alpha (the adapters are scaled by alpha / r)", 32, Bounds(1, MAX_LORA_ALPHA)
    )
    lora_dropout: float = _help("LoRA dropout", 0.05, _SHARE)
    lora_targets: str = _help(
        "modules LoRA adapts: all-linear, or comma-separated names (q_proj,v_proj)", "all-linear"
    )
    quantization: Optional[str] = _help(
        "None, 4bit (QLoRA: nf4, double quantisation) or 8bit, with LoRA (lora_r > 0): "
        "bitsandbytes on CUDA or on the CPU (its CPU backend)",
        None,
    )
    objective: str = _help(
        "classify (a cross-encoder: class probabilities of a row holding both answers) or "
        "reward (a reward model: one scalar per answer, on a dataset built with "
        "--layout separate or --template chat; docs/reward.md)",
        "classify",
    )
    tie_model: str = _help(
        "reward runs: how ties are modelled; davidson or rao_kupper (a learned tie "
        "parameter), or none (Bradley-Terry, a tie counts half a win for each side)",
        "davidson",
    )
    tie_lr: float = _help(
        "reward runs: learning rate of the tie parameter (one number of scale 1, whatever "
        "the model; AdamW moves it about this much per step)",
        0.1,
        Bounds(0, MAX_LR, low_open=True),
    )
    reward_margin: float = _help(
        "reward runs: the margin the winner's reward must lead by (TRL's margin)", 0.0, Bounds(0)
    )
    center_rewards_coefficient: float = _help(
        "reward runs: weight of TRL's reward-centering term c * mean((r_a + r_b)^2), which "
        "pulls the rewards' mean to 0 (0: off; TRL recommends 0.01)",
        0.0,
        Bounds(0),
    )
    gradient_checkpointing: bool = _help("recompute activations in the backward pass", False)
    softcap: bool = _help("Gemma-2 attention logit soft-capping (False turns it off)", True)
    head: str = _help("linear or mlp", "linear")
    attn_implementation: Optional[str] = _help("None: flash-attn varlen or arena_varlen", None)
    layout: str = _help("auto (packs for varlen kernels), packed or padded", "auto")
    epochs: int = _help("passes over the training rows", 1, Bounds(1, MAX_EPOCHS))
    lr: float = _help(
        "learning rate of the decoder or its adapters", 2e-4, Bounds(0, MAX_LR, low_open=True)
    )
    head_lr: Optional[float] = _help(
        "learning rate of the head (None: lr)", None, Bounds(0, MAX_LR, low_open=True)
    )
    weight_decay: float = _help("AdamW weight decay", 0.0, Bounds(0))
    warmup: float = _help("share of the steps spent warming up", 0.05, _SHARE)
    max_tokens: int = _help(
        "tokens per micro-batch (packs) or rows x longest (padded)", 8192, _AT_LEAST_1
    )
    step_tokens: Optional[int] = _help(
        "tokens per optimizer step: micro-batches are accumulated until they reach it "
        "(None: one micro-batch per step)",
        None,
        _AT_LEAST_1,
    )
    swap: Optional[bool] = _help("train on both A/B orders (None: when the dataset has them)", None)
    temperature: float = _help(
        "distillation temperature (datasets with teacher logits)", 1.0, _POSITIVE
    )
    seed: int = _help("seed of the model, the plans and the order", 0, Bounds(0, MAX_SEED))
    out: str = _help("run directory (metrics.jsonl, weights)", "run")
    log_every: int = _help("steps between training log lines", 10, _AT_LEAST_1)
    report_to: tuple[str, ...] = _help(
        "where the log records also go: tensorboard (event files in out/logs), wandb "
        "(Weights & Biases, configured by the WANDB_* environment variables), or both, "
        "comma-separated (none: metrics.jsonl alone)",
        (),
    )
    max_seconds: Optional[float] = _help(
        "stop training after this long (None: no limit)", None, _POSITIVE
    )
    max_steps: Optional[int] = _help(
        "stop after this many optimizer steps (None: no limit)", None, _AT_LEAST_1
    )
    eval_every: Optional[int] = _help(
        "evaluate the held-out fold every this many steps as well as after each epoch "
        "(None: after each epoch only; needs a fold)",
        None,
        _AT_LEAST_1,
    )
    save: Optional[str] = _help(
        "which evaluation's weights and predictions the run keeps: best (the lowest held-out "
        "log loss; the highest held-out accuracy for label space ab) or last (None: best "
        "with a fold, last without one)",
        None,
    )
    early_stopping: Optional[int] = _help(
        "stop after this many evaluations in a row that do not beat the best held-out "
        "metric (log loss; accuracy for label space ab) (None: never; needs a fold)",
        None,
        _AT_LEAST_1,
    )
    checkpoint_every: Optional[int] = _help(
        "write a checkpoint every this many steps, and when stopped early (None: never)",
        None,
        _AT_LEAST_1,
    )
    resume: bool = _help(
        "continue from the run directory's newest complete checkpoint (a fresh start when "
        "it has none; an incomplete one is refused)",
        False,
    )
    overwrite: bool = _help(
        "replace an earlier run of arena-fast in out (without it, out must be new or empty, "
        "or the run is resumed)",
        False,
    )

    def validate(self) -> None:
        """Every field of its type (ints are not bools, floats finite) and in
        its range, and the settings that name choices one of them: a
        `ConfigError` naming the setting otherwise."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            check_setting(f.name, getattr(self, f.name), hints[f.name], f.metadata.get("bounds"))
        if not self.data:
            raise ConfigError("data: give a dataset directory (arena-fast build-dataset --out DIR)")
        for name in ("model", "out"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must not be empty")
        for name, choices in (
            ("layout", LAYOUTS),
            ("head", HEADS),
            ("quantization", QUANTIZATION),
            ("save", SAVES),
            ("objective", OBJECTIVES),
            ("tie_model", TIE_MODELS),
        ):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if self.fold is None:
            for name, why in (
                ("save", "save: best keeps the evaluation with the lowest held-out log loss"),
                ("early_stopping", "early_stopping counts evaluations without improvement"),
                ("eval_every", "eval_every evaluates the held-out fold"),
            ):
                if getattr(self, name) not in (None, "last"):
                    raise ConfigError(
                        f"{why}, and fold is None (every row trains): set fold, or "
                        f"{name}: {'last' if name == 'save' else 'None'}"
                    )
        unknown = [name for name in self.trackers() if name not in TRACKERS]
        if unknown:
            raise ConfigError(f"report_to names {unknown[0]!r}; known: {', '.join(TRACKERS)}")
        if self.attn_implementation == "":
            raise ConfigError("attn_implementation must be None or a name, got ''")
        if self.quantization is not None and not self.lora_r:
            raise ConfigError(
                f"quantization {self.quantization!r} freezes the decoder's weights (they are "
                "stored quantised): train LoRA adapters on it (lora_r > 0, QLoRA), or set "
                "quantization None to train every weight"
            )
        if not self.lora_target_modules():
            raise ConfigError(f"lora_targets names no module: {self.lora_targets!r}")
        self._check_objective()

    def _check_objective(self) -> None:
        """The reward settings are those of a reward run, and a reward run
        reads both answers of each pair."""
        if self.objective == "reward":
            if self.swap is False:
                raise ConfigError(
                    "swap: false, and objective is reward: a reward model reads the two "
                    "answers of each pair as rows 2i and 2i+1 (leave swap unset)"
                )
            return
        for name, default in (
            ("tie_model", "davidson"),
            ("tie_lr", 0.1),
            ("reward_margin", 0),
            ("center_rewards_coefficient", 0),
        ):
            if getattr(self, name) != default:
                raise ConfigError(
                    f"{name} is set, and objective is {self.objective!r}: it applies to "
                    "reward models only (objective: reward)"
                )

    @classmethod
    def check_settings(cls, values: dict) -> None:
        """Names, types and ranges of some settings (a YAML file's, before the
        command line adds the rest), without the checks that need them all."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = [k for k in values if k not in names]
        if unknown:
            raise ConfigError(
                f"unknown training settings {sorted(map(str, unknown))} (known: {', '.join(names)})"
            )
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            check_setting(name, value, hints[name], names[name].metadata.get("bounds"))

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Settings from a mapping (a YAML file, a run's config.json), checked
        (`check_settings`, then `validate`) before anything uses them."""
        if not isinstance(values, dict):
            raise ConfigError(f"training settings must be a mapping, got {type(values).__name__}")
        cls.check_settings(values)
        config = cls(**values)
        config.validate()
        return config

    @property
    def reward(self) -> bool:
        """Whether the run trains a reward model (`objective` "reward")."""
        return self.objective == "reward"

    def save_mode(self) -> str:
        """`save`, or its default: "best" with a held-out fold, "last" without."""
        return self.save or ("best" if self.fold is not None else "last")

    def trackers(self) -> tuple[str, ...]:
        """The trackers `report_to` names, each once, in its order (a comma-
        separated string is read as a list; "none" names none)."""
        names = self.report_to.split(",") if isinstance(self.report_to, str) else self.report_to
        names = [n.strip() for n in names if n.strip() and n.strip() != "none"]
        return tuple(dict.fromkeys(names))

    def lora_target_modules(self):
        """ "all-linear", or the tuple of module names `lora_targets` lists."""
        targets = self.lora_targets.strip()
        if targets == "all-linear":
            return targets
        return tuple(t.strip() for t in targets.split(",") if t.strip())


def check_setting(name: str, value: Any, hint: Any, bounds: Optional[Bounds]) -> None:
    """`value` of the type `hint` names (Optional: None allowed) and within
    `bounds`; a ConfigError naming the setting otherwise."""
    args = typing.get_args(hint)
    if value is None:
        if type(None) in args:
            return
        raise ConfigError(f"{name} must be set, got None")
    base = next((a for a in args if a is not type(None)), hint)
    if typing.get_origin(hint) in (tuple, list):  # a list of names, or one comma-separated
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{name} must be a list of names, got {shown(value, 60)}")
        return
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {shown(value, 60)}")
        return
    if base is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {shown(value, 60)}")
        return
    if base is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name} must be an integer, got {shown(value, 60)}")
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {shown(value, 60)}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int past the float range
            finite = False
        if not finite:
            raise ConfigError(f"{name} must be a finite number, got {shown(value, 60)}")
    if bounds is not None and value not in bounds:
        raise ConfigError(f"{name} must be {bounds}, got {shown(value, 60)}")


def read_config_file(path) -> dict:
    """The settings of a YAML file (`arena-fast train --config`), checked by
    `TrainConfig.check_settings`: a mapping of known settings to scalars, at
    most 1 MiB, UTF-8, without anchors or aliases (a few hundred bytes of
    nested aliases expand to gigabytes). Floats may be written `2e-4` (YAML
    1.2) as well as `2.0e-4`. A ConfigError naming the file (and the line,
    for bad YAML) otherwise."""
    # Imported here, not at the top: PyYAML comes with the train extra, not
    # with arena_fast, and `arena-fast --help` (and `report`, through
    # `runs`) import this module.
    import yaml

    path = Path(path)
    raw = read_capped(path, MAX_CONFIG_BYTES, "a settings file", ConfigError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        loaded = yaml.load(text, Loader=_loader())  # a SafeLoader
    except _Refused as exc:
        raise ConfigError(f"{path}, line {exc.line}: {exc.reason}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {exc.problem or exc}") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an int past the digit limit
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{path}: expected a mapping of settings (name: value), got {type(loaded).__name__}"
        )
    try:
        TrainConfig.check_settings(loaded)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return loaded


class _Refused(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line, self.reason = line, reason


@functools.cache
def _loader():
    """The loader class (made on first use: yaml is imported only when a
    settings file is read)."""
    import yaml

    class SettingsLoader(yaml.SafeLoader):
        """yaml's SafeLoader without anchors and aliases, nesting at most
        `_MAX_YAML_DEPTH` deep, duplicate keys refused, and YAML 1.2 floats."""

        depth = 0

        def compose_node(self, parent, index):
            event = self.peek_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise _Refused(line, "YAML anchors and aliases (& and *) are not allowed here")
            if self.depth >= _MAX_YAML_DEPTH:
                raise _Refused(line, f"nested more than {_MAX_YAML_DEPTH} deep")
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # SafeLoader refuses unhashable keys itself
                key = key_node.value
                if key in seen:
                    raise _Refused(key_node.start_mark.line + 1, f"{key!r} is set twice")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    # PyYAML follows YAML 1.1, where `2e-4` is a string; 1.2 reads a float.
    SettingsLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return SettingsLoader
