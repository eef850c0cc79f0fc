#!/usr/bin/env python3
"""Golden token ids for the byte-level BPE tokenizer (tests/model/test_tokenizer_golden.cpp).

Reference: HF `tokenizers` configured as the default model's own tokenizer.json (the official
SmolLM2 one): vocabulary, merges and added tokens as transformers builds them from the GGUF
(AutoTokenizer.from_pretrained(dir, gguf_file=...)), with the pre-tokenizer replaced by the
official Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false,
trim_offsets=true, use_regex=true)] (see official_pre_tokenizer()). Writes
  tests/data/tokenizer_golden.json   {"reference": ..., "cases": [{"text", "ids"}, ...]}
  tests/data/smollm2_tokenizer.json  the corrected tokenizer saved as an HF tokenizer.json
for every line of tests/data/tokenizer_corpus.txt (lines split on "\\n" only) plus multi-line
texts built from it (joined with "\\n", "\\n\\n", "\\r\\n") and a few fixed edge cases.

Run (not part of CI; needs the HF reference stack and the default model):
  /tmp/refenv/bin/python scripts/golden/make_tokenizer_golden.py \
      [--model-dir ~/.cache/attnscope/models] [--gguf SmolLM2-135M-Instruct.Q4_1.gguf]

It also reports how many cases transformers' unmodified GGUF conversion (plain ByteLevel with
the GPT-2 regex for tokenizer.ggml.pre = "smollm") would tokenize differently.
"""
import argparse
import json
import os
import sys

from tokenizers import Tokenizer, pre_tokenizers
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")


def multi_line_cases(lines):
    cases = []
    n = len(lines)
    for i in range(0, n, 7):  # small paragraphs
        cases.append("\n".join(lines[i:i + 5]))
    for i in range(3, n, 11):  # blank-line separated
        cases.append("\n\n".join(lines[i:i + 3]))
    for i in range(5, n, 13):  # Windows line ends, with a trailing one
        cases.append("\r\n".join(lines[i:i + 4]) + "\r\n")
    for i in range(1, n, 29):  # mixed separators and trailing blank lines
        cases.append(lines[i] + "\n" + lines[(i + 1) % n] + "\n\n\n" + lines[(i + 2) % n] + " \n \n")
    cases += [
        "", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", " \n ", "\t\n\t",
        "a\nb", "a\n\nb", "a\n\n\nb", "a\r\nb", "a\rb", "a \n b", "a  \n\n  b",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\nHi there!\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
        "def f(x):\n    return x\n\n\nprint(f(1))\n",
        # Digits(individual) before the GPT-2 regex: spaces before numerals, non-ASCII numerals,
        # and numerals newer than PCRE2 10.42's Unicode tables (Kawi, Garay, Ol Onal digits).
        "a   1", "x \u00bd \u2460", " 1", "1 ", "12 345 6789", "v2.0.1-rc3", "\u2167\u00b2x",
        "k \U00011F52 g \U00010D41\U00010D42 o \U0001E5F3 .",
        "a   \U00010D40 b  \U0001E5F1 c   \U00011F50",
        "\n".join(lines),  # the whole corpus as one long text
    ]
    return cases


def official_pre_tokenizer():
    """The pre-tokenizer SmolLM2 was trained with.

    The model repo's tokenizer.json has Sequence[Digits(individual_digits=true),
    ByteLevel(add_prefix_space=false, trim_offsets=true, use_regex=true)], and llama.cpp's
    LLAMA_VOCAB_PRE_TYPE_SMOLLM (tokenizer.ggml.pre = "smollm") does the same: every \\p{N}
    code point is isolated first, then the GPT-2 regex splits the pieces. transformers' GGUF
    conversion drops the Digits step (it builds plain ByteLevel), so " 1" or "12" would stay one
    piece there; the model never saw such pieces in training.
    """
    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=os.path.expanduser("~/.cache/attnscope/models"))
    ap.add_argument("--gguf", default="SmolLM2-135M-Instruct.Q4_1.gguf")
    args = ap.parse_args()

    tok = AutoTokenizer.from_pretrained(args.model_dir, gguf_file=args.gguf)
    converted = tok.backend_tokenizer
    print("pre_tokenizer built by transformers:", converted.pre_tokenizer.__getstate__())
    # A copy with the official pre-tokenizer; `converted` stays as transformers built it, only
    # for the comparison printed at the end.
    backend = Tokenizer.from_str(converted.to_str())
    backend.pre_tokenizer = official_pre_tokenizer()
    print("pre_tokenizer used for the golden data:", backend.pre_tokenizer.__getstate__())

    with open(os.path.join(DATA, "tokenizer_corpus.txt"), encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts = lines + multi_line_cases(lines)

    # The model's own behaviour: SmolLM2 adds no BOS/EOS (tokenizer.ggml.add_bos_token false).
    add_special = True
    cases = []
    for text in texts:
        ids = backend.encode(text, add_special_tokens=add_special).ids
        if backend.decode(ids, skip_special_tokens=False) != text:
            print("note: HF decode does not round-trip:", repr(text[:60]))
        cases.append({"text": text, "ids": ids})

    out = {
        "reference": {
            "library": "tokenizers (vocab/merges via transformers AutoTokenizer gguf_file=; "
                       "pre_tokenizer Digits(individual)+ByteLevel as SmolLM2's tokenizer.json)",
            "gguf": args.gguf,
            "add_special_tokens": add_special,
            "script": "scripts/golden/make_tokenizer_golden.py",
        },
        "cases": cases,
    }
    with open(os.path.join(DATA, "tokenizer_golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    backend.save(os.path.join(DATA, "smollm2_tokenizer.json"), pretty=False)
    print(f"wrote {len(cases)} cases ({len(lines)} corpus lines)")

    # Compare with transformers' unmodified GGUF conversion (no Digits step).
    differ = [c for c in cases
              if converted.encode(c["text"], add_special_tokens=add_special).ids != c["ids"]]
    print(f"transformers' GGUF-conversion pre-tokenizer (plain ByteLevel) differs on "
          f"{len(differ)} of {len(cases)} cases")
    for c in differ[:5]:
        print("  e.g.", repr(c["text"][:70]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
