#!/usr/bin/env python3
"""Golden data for the default model's GGUF tensors, produced by the `gguf` Python package
(GGUFReader + gguf.quants.dequantize) and transformers' GGUF loader (Q/K un-permutation).

For a Q8_0, a Q4_1 and an F32 tensor in raw GGUF order: first/last 16 values and the fp64
sum. For blk.0.attn_q/attn_k after transformers' reverse permutation (HF layout): selected
rows' first 8 values and every row's sum.
Output: tests/data/gguf_golden.json. Run with the reference venv:
  /tmp/refenv/bin/python scripts/golden/make_gguf_golden.py [model.gguf]
"""
import json
import os
import pathlib
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

DEFAULT = pathlib.Path(os.environ.get("ATTNSCOPE_MODELS", pathlib.Path.home() / ".cache/attnscope/models")) \
    / "SmolLM2-135M-Instruct.Q4_1.gguf"
RAW_TENSORS = ["token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight",
               "blk.0.attn_norm.weight", "output_norm.weight"]
ROWS = [0, 1, 2, 31, 32, 33, 62, 63, 64, 65, 127, 128, 191]


def main() -> None:
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    reader = GGUFReader(str(path))
    tensors = {t.name: t for t in reader.tensors}
    out = {"model": path.name, "source": "gguf.quants.dequantize + transformers reverse permute",
           "raw": {}, "hf_layout": {}}
    for name in RAW_TENSORS:
        t = tensors[name]
        v = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        out["raw"][name] = {"type": t.tensor_type.name, "n": int(v.size),
                            "first": [float(x) for x in v[:16]],
                            "last": [float(x) for x in v[-16:]],
                            "sum": float(v.astype(np.float64).sum())}
    n_head = int(reader.fields["llama.attention.head_count"].contents())
    n_head_kv = int(reader.fields["llama.attention.head_count_kv"].contents())
    proc = LlamaTensorProcessor(config={"num_attention_heads": n_head,
                                        "num_key_value_heads": n_head_kv})
    for name in ["blk.0.attn_q.weight", "blk.0.attn_k.weight"]:
        t = tensors[name]
        w = dequantize(t.data, t.tensor_type).astype(np.float32)  # [out, in]
        hf = proc.process(w, name).weights
        out["hf_layout"][name] = {
            "shape": [int(s) for s in hf.shape],
            "rows": {str(r): [float(x) for x in hf[r, :8]] for r in ROWS if r < hf.shape[0]},
            "row_sums": [float(s) for s in hf.astype(np.float64).sum(axis=1)],
        }
    dst = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "gguf_golden.json"
    dst.write_text(json.dumps(out, indent=1))
    print("wrote", dst)


if __name__ == "__main__":
    main()
