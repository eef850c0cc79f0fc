#!/usr/bin/env python3
"""Golden data for ggml block dequantization, produced by the `gguf` Python package
(gguf.quants.dequantize, an implementation independent of attnscope's).

For each block type: two blocks of seeded random bytes whose fp16 scale fields are replaced
by finite values, and the fp32 values gguf.quants produces for them. Output:
tests/data/ggml_dequant_golden.json  {type: {"hex": bytes, "values": [floats]}}.
Run with the reference venv:  /tmp/refenv/bin/python scripts/golden/make_dequant_golden.py
"""
import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

SEED = 1234
N_BLOCKS = 2
# type -> (block bytes, byte offsets of fp16 scale fields)
LAYOUT = {
    "Q4_0": (18, [0]),
    "Q4_1": (20, [0, 2]),
    "Q5_0": (22, [0]),
    "Q5_1": (24, [0, 2]),
    "Q8_0": (34, [0]),
    "Q2_K": (84, [80, 82]),
    "Q3_K": (110, [108]),
    "Q4_K": (144, [0, 2]),
    "Q5_K": (176, [0, 2]),
    "Q6_K": (210, [208]),
}


def main() -> None:
    rng = np.random.default_rng(SEED)
    out = {}
    for name, (block_bytes, half_offsets) in LAYOUT.items():
        raw = bytearray(rng.integers(0, 256, size=block_bytes * N_BLOCKS, dtype=np.uint8).tobytes())
        for b in range(N_BLOCKS):
            for off in half_offsets:
                h = np.float16(rng.uniform(-0.2, 0.2)).tobytes()
                raw[b * block_bytes + off: b * block_bytes + off + 2] = h
        data = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(N_BLOCKS, block_bytes)
        values = dequantize(data, getattr(T, name)).astype(np.float32).reshape(-1)
        out[name] = {"hex": bytes(raw).hex(), "values": [float(v) for v in values]}
    # Plain 16-bit types: random finite bit patterns (including subnormals) via numpy.
    bits = rng.integers(0, 0x7C00, size=64, dtype=np.uint16)
    bits |= (rng.integers(0, 2, size=64, dtype=np.uint16) << 15).astype(np.uint16)
    out["F16"] = {"hex": bits.tobytes().hex(),
                  "values": [float(v) for v in bits.view(np.float16).astype(np.float32)]}
    bf = rng.integers(0, 0x7F80, size=64, dtype=np.uint16)
    bf_vals = (bf.astype(np.uint32) << 16).view(np.float32)
    out["BF16"] = {"hex": bf.tobytes().hex(), "values": [float(v) for v in bf_vals]}
    path = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "ggml_dequant_golden.json"
    path.write_text(json.dumps({"seed": SEED, "source": "gguf.quants.dequantize", "types": out}))
    print("wrote", path)


if __name__ == "__main__":
    main()
