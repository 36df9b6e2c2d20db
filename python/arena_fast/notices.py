"""Third-party log messages that say nothing a user can act on, filtered
once, when `arena_fast` is imported (before the torch layer or a user's
`transformers` import loads the library that logs them): each filter drops
one message of one logger, nothing else.

- bitsandbytes (imported by peft and by `transformers.Trainer`) logs
  "Failed to load CPU gemm_4bit_forward from kernels-community ..." on
  every CPU run where it looks for an optional kernel and falls back.
- bitsandbytes logs "MatMul8bitLt: inputs will be cast from torch.float32 to
  float16 during quantization" on every 8-bit forward: the documented
  behaviour of its int8 matmul (docs/training.md, QLoRA and 8-bit)."""

from __future__ import annotations

import logging

__all__ = ["BNB_CPU_NOTICE", "BNB_INT8_CAST", "install"]

BNB_CPU_NOTICE = "Failed to load CPU gemm_4bit_forward"
_BNB_LOGGER = "bitsandbytes.backends.cpu.ops"
BNB_INT8_CAST = "MatMul8bitLt: inputs will be cast"
_BNB_INT8_LOGGER = "bitsandbytes.autograd._functions"


def _not_bnb_cpu_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(BNB_CPU_NOTICE)


def _not_bnb_int8_cast(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(BNB_INT8_CAST)


def install() -> None:
    """Add the filters (idempotent: a logger holds each filter once)."""
    logging.getLogger(_BNB_LOGGER).addFilter(_not_bnb_cpu_notice)
    logging.getLogger(_BNB_INT8_LOGGER).addFilter(_not_bnb_int8_cast)
