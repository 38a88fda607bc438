"""The CPU a figure or an int8 graph depends on: its name and the vector extensions that
decide int8 speed and numerics."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu() -> dict:
    """Model name and the vector extensions that decide int8 speed and numerics."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
    return {"name": name, "cores": os.cpu_count(),
            "extensions": [f for f in wanted if f in flags]}


def bfloat16_products() -> bool:
    """Whether bfloat16 products run natively here (AVX512-BF16); without it PyTorch
    emulates them, 4-5x slower than float32."""
    return "avx512_bf16" in cpu()["extensions"]


def exact_int8_products() -> bool:
    """Whether int8 products sum without saturation here: VNNI or AMX. Without them x86
    kernels add pairs of u8 x s8 products in 16 bits, which clamps past 32,767."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(cpu()["extensions"])) or \
        platform.machine().lower() in ("arm64", "aarch64")
