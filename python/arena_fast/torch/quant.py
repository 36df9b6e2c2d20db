"""QLoRA (4-bit) and 8-bit decoders through bitsandbytes, on CUDA and on the
CPU (the `[train]` extra). bitsandbytes itself is imported only when a
quantisation is asked for: it is optional (Linux only in the extra) and
slow to import.

- `check_support(quantization, device)`: the installed bitsandbytes can
  quantise on `device` (its version, then a tiny quantise round trip, once
  per version and device), or a `ConfigError` naming the version needed.
  bitsandbytes has run on CUDA since `BNB_MIN_VERSION["cuda"]`; its CPU
  backend (4-bit and 8-bit layers, forward and backward) since
  `BNB_MIN_VERSION["cpu"]`.
- `bnb_config(quantization, dtype, device)`: the `BitsAndBytesConfig`: 4-bit
  is nf4 with double quantisation; it computes in bfloat16 on CUDA (for a
  float32 model) and in the model's dtype on the CPU (float32: exact, and
  what a CPU without bf16 units runs fastest).
- `quantized(decoder, quant, dtype)`: a float decoder (the tiny presets,
  made from their config) quantised by the same `from_pretrained` path that
  quantises a model folder, so both give the same quantised weights.
- `keep_cpu_layout(decoder)`: every 4-bit layer keeps bitsandbytes' common
  weight layout on the CPU (see its docstring).
- `dequantized_weight(module)`: a 4-bit or 8-bit layer's weight as floats
  (None for any other module): what `af.merge` folds an adapter into.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import torch
from packaging.version import InvalidVersion, Version
from transformers import BitsAndBytesConfig
from transformers.utils import logging as hf_logging

from ..errors import ConfigError

__all__ = [
    "BNB_MIN_VERSION",
    "bnb_config",
    "check_support",
    "dequantized_weight",
    "keep_cpu_layout",
    "quantized",
]

# The first bitsandbytes release that quantises on each device type.
BNB_MIN_VERSION = {"cuda": "0.43", "cpu": "0.48"}


def check_support(quantization: str, device: str) -> None:
    """A `ConfigError` unless the installed bitsandbytes quantises
    `quantization` ("4bit" / "8bit") on `device` ("cuda" / "cpu")."""
    try:
        import bitsandbytes
    except ImportError:
        raise ConfigError(
            f"quantization={quantization!r} needs bitsandbytes >= "
            f"{BNB_MIN_VERSION[device]} on the {device.upper()} (pip install "
            "'arena-fast[train]'); it is not installed"
        ) from None
    except (RuntimeError, OSError) as exc:  # a build that cannot load its library
        raise ConfigError(
            f"quantization={quantization!r}: bitsandbytes failed to import "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    _check(quantization, device, str(getattr(bitsandbytes, "__version__", "0")))


@functools.cache
def _check(quantization: str, device: str, version: str) -> None:
    """The version check and a round trip through the kernels, once per
    (quantisation, device, installed version)."""
    need = BNB_MIN_VERSION[device]
    where = "on the CPU" if device == "cpu" else "on CUDA"
    try:
        too_old = Version(version) < Version(need)
    except InvalidVersion:
        too_old = True
    if too_old:
        raise ConfigError(
            f"quantization={quantization!r} {where} needs bitsandbytes >= {need}; "
            f"bitsandbytes {version} is installed (upgrade it, or train with "
            "quantization None)"
        )
    try:
        _round_trip(quantization, device)
    except (RuntimeError, NotImplementedError, ValueError, AssertionError) as exc:
        raise ConfigError(
            f"quantization={quantization!r} {where}: bitsandbytes {version} cannot quantise "
            f"here ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def _round_trip(quantization: str, device: str) -> None:
    """Quantise a small matrix with the kernels the layers use, and back."""
    import bitsandbytes.functional as bnb_f

    x = torch.linspace(-1, 1, 64 * 64, device=device).reshape(64, 64)
    if quantization == "4bit":
        packed, state = bnb_f.quantize_4bit(x, quant_type="nf4", compress_statistics=True)
        back = bnb_f.dequantize_4bit(packed, state)
    else:
        codes, scales, _ = bnb_f.int8_vectorwise_quant(x.half())
        back = bnb_f.int8_vectorwise_dequant(codes, scales)
    if not bool(torch.allclose(back.float(), x, atol=0.1)):
        raise RuntimeError("a quantise round trip gave other values")


def bnb_config(quantization: str, dtype: torch.dtype, device: str) -> BitsAndBytesConfig:
    """4-bit: nf4, double quantisation, computing in bfloat16 on CUDA (for a
    float32 model) and in `dtype` on the CPU; 8-bit: LLM.int8()."""
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = torch.bfloat16 if device == "cuda" and dtype == torch.float32 else dtype
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def quantized(decoder: Any, quant: BitsAndBytesConfig, dtype: torch.dtype) -> Any:
    """`decoder` (a float model made from its config) reloaded with its own
    weights through `from_pretrained` and `quant`: the path that quantises a
    model folder, so a tiny preset is quantised as a folder would be (and
    the same float weights always give the same quantised ones)."""
    quiet = hf_logging.is_progress_bar_enabled()
    if quiet:  # a "Loading weights" bar for weights already in memory
        hf_logging.disable_progress_bar()
    try:
        return type(decoder).from_pretrained(
            None,
            config=decoder.config,
            state_dict=decoder.state_dict(),
            quantization_config=quant,
            dtype=dtype,
        )
    finally:
        if quiet:
            hf_logging.enable_progress_bar()


def keep_cpu_layout(decoder: torch.nn.Module) -> None:
    """Keep every 4-bit layer in bitsandbytes' common weight layout. On a CPU
    with avx512-bf16, bitsandbytes repacks a 4-bit weight in place at its
    first forward in eval mode without gradients, for a bf16 inference
    kernel; a training step after an evaluation then backpropagates through
    that kernel, which has no autograd formula (torch warns of "silently
    incorrect behavior"), and the evaluation computes in bf16 where training
    computes in the compute dtype. Without the repacking every forward
    dequantises the weight: evaluation, prediction and training agree."""
    for module in decoder.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def dequantized_weight(module: torch.nn.Module) -> Optional[torch.Tensor]:
    """The float weight a bitsandbytes 4-bit (`Linear4bit`) or 8-bit
    (`Linear8bitLt`) layer computes with; None for any other module."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnb_f

    if isinstance(module, bnb.nn.Linear4bit):
        weight = module.weight
        if weight.device.type == "cpu":
            weight = weight.cpu()  # undoes bitsandbytes' CPU inference layout, if any
        return bnb_f.dequantize_4bit(weight.data, weight.quant_state).float()
    if isinstance(module, bnb.nn.Linear8bitLt):
        weight = module.weight
        scales = weight.SCB if getattr(weight, "SCB", None) is not None else module.state.SCB
        return bnb_f.int8_vectorwise_dequant(weight.data, scales).float()
    return None
