#!/usr/bin/env python3
"""Writes tests/data/safetensors_golden.safetensors with the reference `safetensors` writer.

tests/core/test_safetensors.cpp reads it and compares against the same values, which are all
exactly representable in the stored dtype, so the expected fp32 values are exact.
Run with the reference venv:  /tmp/refenv/bin/python scripts/golden/safetensors_golden.py
"""
import pathlib

import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "safetensors_golden.safetensors"

tensors = {
    # [2, 3] F32, row-major
    "a.f32": torch.tensor([[1.5, -2.25, 0.0], [3.0e-8, -1.0e30, 7.0]], dtype=torch.float32),
    # [4] F16: 1, -2, 65504 (max half), 2^-24 (smallest subnormal)
    "b.f16": torch.tensor([1.0, -2.0, 65504.0, 2.0 ** -24], dtype=torch.float16),
    # [2, 2] BF16: 1, -3, 0.33203125 (bf16 nearest to 1/3), 2^100
    "c.bf16": torch.tensor([[1.0, -3.0], [0.33203125, 2.0 ** 100]], dtype=torch.bfloat16),
    # [3] I64: present so readers must refuse to convert it
    "d.i64": torch.tensor([1, 2, 3], dtype=torch.int64),
}
save_file(tensors, str(OUT), metadata={"format": "pt", "note": "attnscope golden"})
print(OUT, OUT.stat().st_size, "bytes")
