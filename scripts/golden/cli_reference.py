#!/usr/bin/env python3
"""Golden values for tests/model/test_cli.cpp, computed with the HF reference stack
(transformers + gguf dequantization of the same GGUF file). Not run in CI; its printed values
are pasted into the test as constants.

Usage: /tmp/refenv/bin/python scripts/golden/cli_reference.py [MODEL.gguf]
"""
import json
import math
import os
import sys

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

from make_tokenizer_golden import official_pre_tokenizer  # same directory

MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
    "~/.cache/attnscope/models/SmolLM2-135M-Instruct.Q4_1.gguf")

TOKENIZE_TEXT = "Hello, world! Caf\u00e9 na\u00efve \u4f60\u597d \U0001F642 x=42;"
GENERATE_PROMPT = "The capital of France is"
GENERATE_TOKENS = 8
ATTN_PROMPT = "One two three four five six"
ATTN_LAYER, ATTN_HEAD = 3, 2
EVAL_TEXT = ("The quick brown fox jumps over the lazy dog. A journey of a thousand miles "
             "begins with a single step. Knowledge is power.\n")


def load_reference_model(path):
    """HF Llama built from the GGUF's dequantized tensors (transformers' own GGUF mapping,
    which also undoes llama.cpp's Q/K row permutation); eager attention to expose probs."""
    config = load_gguf_checkpoint(path)["config"]
    config = {k: v for k, v in config.items() if k not in ("model_type", "architectures")}
    cfg = LlamaConfig(**config)
    cfg._attn_implementation = "eager"
    model = LlamaForCausalLM(cfg).float()
    tensors = load_gguf_checkpoint(path, return_tensors=True, model_to_load=model)["tensors"]
    missing, unexpected = model.load_state_dict(
        {k: torch.as_tensor(v).float() for k, v in tensors.items()}, strict=False)
    missing = [m for m in missing if m != "lm_head.weight"]
    assert not missing and not unexpected, (missing, unexpected)
    model.tie_weights()
    return model


def main():
    d, f = os.path.dirname(MODEL), os.path.basename(MODEL)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    # transformers' GGUF conversion drops SmolLM2's Digits(individual) pre-tokenizer step;
    # restore the model's own one (see make_tokenizer_golden.official_pre_tokenizer).
    tok.backend_tokenizer.pre_tokenizer = official_pre_tokenizer()
    assert tok.encode(" 12", add_special_tokens=False) == [216, 33, 34], "Digits step not applied"
    model = load_reference_model(MODEL)
    model.eval()
    out = {}
    out["tokenize_ids"] = tok.encode(TOKENIZE_TEXT, add_special_tokens=False)

    ids = tok.encode(GENERATE_PROMPT, add_special_tokens=False)
    with torch.no_grad():
        seq = list(ids)
        margins = []
        for _ in range(GENERATE_TOKENS):
            logits = model(torch.tensor([seq])).logits[0, -1]
            top = torch.topk(logits, 2)
            margins.append(float(top.values[0] - top.values[1]))
            seq.append(int(top.indices[0]))
    out["generate_prompt_ids"] = ids
    out["generate_ids"] = seq[len(ids):]
    out["generate_min_margin"] = min(margins)
    out["generate_text"] = tok.decode(seq[len(ids):])

    ids = tok.encode(ATTN_PROMPT, add_special_tokens=False)
    with torch.no_grad():
        res = model(torch.tensor([ids]), output_attentions=True)
    probs = res.attentions[ATTN_LAYER][0, ATTN_HEAD]
    out["attn_ids"] = ids
    out["attn_probs"] = [[round(float(x), 7) for x in row] for row in probs]

    ids = tok.encode(EVAL_TEXT, add_special_tokens=False)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    lp = torch.log_softmax(logits.double(), dim=-1)
    nll = -sum(float(lp[i, ids[i + 1]]) for i in range(len(ids) - 1)) / (len(ids) - 1)
    out["eval_n_tokens"] = len(ids)
    out["eval_perplexity"] = math.exp(nll)
    print(json.dumps(out, ensure_ascii=True))


if __name__ == "__main__":
    main()
