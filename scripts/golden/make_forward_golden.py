#!/usr/bin/env python3
# Golden data for the CPU forward pass: runs HF transformers (eager attention, fp32) on the
# default SmolLM2 GGUF (dequantized by transformers/gguf, independent of our loader) and writes
# input ids, per-position top-20 logits, selected attention maps and 32 greedy tokens to
# tests/data/forward_golden/ (manifest.json + .npy). Not run in CI; run with /tmp/refenv:
#   /tmp/refenv/bin/python scripts/golden/make_forward_golden.py
import json
import os
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

MODEL_DIR = os.path.expanduser("~/.cache/attnscope/models")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data",
                   "forward_golden")
TOP_K = 20
N_GREEDY = 32

LONG_TEXT = (
    "The lighthouse stood at the end of a narrow spit of land, where the river met the sea and "
    "the gulls argued over scraps the fishermen threw from their boats. For nearly two hundred "
    "years its lamp had turned every night, first burning whale oil, then kerosene, and finally "
    "an electric bulb no larger than a man's fist, magnified by a great glass lens that had been "
    "shipped from France in wooden crates packed with straw. The keepers had changed many times. "
    "Some stayed for decades and raised their children in the small stone cottage beside the "
    "tower; others left after a single winter, unable to bear the wind that howled through the "
    "cracks in the shutters and the long weeks when the supply boat could not cross the bar. "
    "The last keeper, a quiet woman named Margaret, kept a logbook in which she recorded the "
    "weather, the ships that passed, and the birds that rested on the gallery railing during "
    "their migrations. When the light was finally automated, she climbed the spiral staircase "
    "one last time, polished the brass fittings until they shone, and wrote a single line at the "
    "bottom of the final page: the sea does not care who watches it, but it is better watched. "
    "Today visitors walk along the spit in summer, read her words in a glass case at the foot of "
    "the tower, and look out at the water she guarded for so many years, wondering what she saw "
    "on the nights when the storms came in from the west and the beam swept across the waves."
)

PROMPTS = [
    {"name": "capital", "text": "The capital of France is", "pairs": "all", "greedy": True},
    {"name": "code", "text": "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
     "pairs": "all", "greedy": False},
    {"name": "chat", "text": "<|im_start|>user\nWhy is the sky blue? Answer in two sentences, "
     "mentioning Rayleigh scattering and the wavelength of light.<|im_end|>\n"
     "<|im_start|>assistant\n", "pairs": "all", "greedy": False},
    {"name": "story", "text": LONG_TEXT, "pairs": "long", "greedy": False},
]
PAIRS_ALL = [(0, 0), (3, 4), (10, 8), (17, 2), (24, 5), (29, 7)]
PAIRS_LONG = [(0, 0), (10, 8), (17, 2), (29, 7)]


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=GGUF,
                                                 dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    cfg = model.config
    print("config:", cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads,
          cfg.rope_parameters if hasattr(cfg, "rope_parameters") else cfg.rope_theta,
          file=sys.stderr)
    manifest = {
        "generator": "scripts/golden/make_forward_golden.py",
        "model": GGUF,
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "top_k": TOP_K,
        "prompts": [],
    }
    for p in PROMPTS:
        ids = tok(p["text"], add_special_tokens=False)["input_ids"]
        t = len(ids)
        x = torch.tensor([ids], dtype=torch.long)
        with torch.no_grad():
            out = model(x, output_attentions=True, use_cache=False)
        logits = out.logits[0].float()  # [T, V]
        vals, idx = torch.topk(logits, TOP_K, dim=-1, sorted=True)
        name = p["name"]
        entry = {"name": name, "n_tokens": t, "text": p["text"],
                 "ids": f"{name}_ids.npy",
                 "topk_ids": f"{name}_topk_ids.npy",
                 "topk_values": f"{name}_topk_values.npy",
                 "attention": []}
        np.save(os.path.join(OUT, entry["ids"]), np.array(ids, dtype="<i4"))
        np.save(os.path.join(OUT, entry["topk_ids"]), idx.numpy().astype("<i4"))
        np.save(os.path.join(OUT, entry["topk_values"]), vals.numpy().astype("<f4"))
        pairs = PAIRS_ALL if p["pairs"] == "all" else PAIRS_LONG
        for layer, head in pairs:
            probs = out.attentions[layer][0, head].float().numpy().astype("<f4")  # [T, T]
            fname = f"{name}_attn_L{layer}_H{head}.npy"
            np.save(os.path.join(OUT, fname), probs)
            entry["attention"].append({"layer": layer, "head": head, "file": fname})
        if p["greedy"]:
            # Plain greedy loop without EOS stopping: argmax (first index among ties).
            gen = []
            cur = list(ids)
            with torch.no_grad():
                for _ in range(N_GREEDY):
                    lg = model(torch.tensor([cur]), use_cache=False).logits[0, -1]
                    nxt = int(torch.argmax(lg).item())
                    gen.append(nxt)
                    cur.append(nxt)
            entry["greedy"] = f"{name}_greedy.npy"
            np.save(os.path.join(OUT, entry["greedy"]), np.array(gen, dtype="<i4"))
            print(name, "greedy:", repr(tok.decode(gen)), file=sys.stderr)
        manifest["prompts"].append(entry)
        print(name, t, "tokens", file=sys.stderr)
    manifest["eos_id"] = tok.eos_token_id
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
