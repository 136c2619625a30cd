"""Writes reference.json + reference.bin into a Hugging Face model folder: what transformers computes, in float64,
for the weights exactly as saved, so that `exo verify --model FOLDER` can check the engine against it.

    python3 make_reference.py MODEL_DIR [--family chatml]

Format (the one DESIGN.md describes for ../shared/fixtures): reference.json holds
  tokenizer: [{text, ids, decoded}]   ids from tokenizer.json with its post-processor (so BOS where it adds one)
  chat:      [{messages, add_generation_prompt, text, ids}]   rendered by transformers' apply_chat_template
  cases:     [{input_ids, logits, hidden_states, greedy_new_tokens}]
             logits [seq, vocab]; hidden_states L+1 arrays [seq, hidden]: entry 0 the token embeddings, entry i the
             input of layer i, the last entry the final norm applied to the last layer's output;
             greedy_new_tokens: 24 argmax steps, no stop token
  reference_bin_sha256
each array as {offset (bytes), shape, dtype: "f32"} into reference.bin (float32, little-endian, row-major).
"""
import argparse
import hashlib
import json
import os

import torch

STRINGS = [
    "It is a truth universally acknowledged, that a single man in possession of a good fortune",
    "In the beginning God created the heaven and the earth.",
    "Ünïcödé façade — “quotes” and 🚀 emoji, tabs\tand\nnew  lines",
    "    x += y[i];  // code, 12345 and 3.14",
]
CONVERSATION = [{"role": "user", "content": "Who are you?"},
                {"role": "assistant", "content": "I am Exo Tiny."},
                {"role": "user", "content": "Tell me my fortune."}]


def _as_ids(x):
    if hasattr(x, "keys"):
        x = x["input_ids"]
    return [int(i) for i in x]


class _Blob:
    def __init__(self):
        self.data = bytearray()

    def put(self, t):
        arr = t.detach().to(torch.float32).contiguous().cpu().numpy()
        entry = {"offset": len(self.data), "shape": list(arr.shape), "dtype": "f32"}
        self.data.extend(arr.astype("<f4").tobytes())
        return entry


def write_reference(folder, family, strings, conversations, prompts, greedy_steps=24):
    """prompts: list of str (encoded with the tokenizer) or int lists; conversations also become prompts."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    raw_tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    hf_tok = PreTrainedTokenizerFast.from_pretrained(folder)
    meta = {"family": family, "generated_by": "tools/train-default-model/make_reference.py",
            "tokenizer": [], "chat": [], "cases": []}
    for s in strings:
        ids = raw_tok.encode(s).ids
        meta["tokenizer"].append({"text": s, "ids": ids, "decoded": raw_tok.decode(ids, skip_special_tokens=True)})
        if _as_ids(hf_tok(s)["input_ids"]) != ids:
            raise SystemExit(f"tokenizer.json and transformers disagree on {s!r}")
    chat_ids = []
    for convo in conversations:
        text = hf_tok.apply_chat_template(convo, tokenize=False, add_generation_prompt=True)
        ids = _as_ids(hf_tok.apply_chat_template(convo, tokenize=True, add_generation_prompt=True))
        meta["chat"].append({"messages": convo, "add_generation_prompt": True, "text": text, "ids": ids})
        chat_ids.append(ids)

    # Loading the saved folder (not the in-memory model) makes the reference describe the files as they are.
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64).eval()
    blob = _Blob()
    for p in [raw_tok.encode(p).ids if isinstance(p, str) else list(p) for p in prompts] + chat_ids:
        x = torch.tensor([p])
        with torch.no_grad():
            out = model(input_ids=x, output_hidden_states=True)
            n_layers = model.config.num_hidden_layers
            if len(out.hidden_states) != n_layers + 1:
                raise SystemExit(f"expected {n_layers + 1} hidden states, got {len(out.hidden_states)}")
            # The last entry must already be normed: the lm head applied to it gives the logits.
            if not torch.allclose(model.lm_head(out.hidden_states[-1]), out.logits, atol=1e-9, rtol=1e-9):
                raise SystemExit("last hidden state is not the final-norm output in this transformers version")
            ids = list(p)
            for _ in range(greedy_steps):
                ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
        meta["cases"].append({"input_ids": list(p), "logits": blob.put(out.logits[0]),
                              "hidden_states": [blob.put(h[0]) for h in out.hidden_states],
                              "greedy_new_tokens": ids[len(p):]})
    with open(os.path.join(folder, "reference.bin"), "wb") as fh:
        fh.write(bytes(blob.data))
    meta["reference_bin_sha256"] = hashlib.sha256(bytes(blob.data)).hexdigest()
    with open(os.path.join(folder, "reference.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, ensure_ascii=False)
    return len(blob.data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--family", default="chatml")
    args = ap.parse_args()
    # Few, short prompts: with an 8k vocabulary the logits alone cost 32 KB per position.
    prompts = [STRINGS[0][:38], "In the beginning God created"]
    n = write_reference(args.model_dir, args.family, STRINGS, [CONVERSATION], prompts)
    print(f"reference.bin {n} bytes in {args.model_dir}")


if __name__ == "__main__":
    main()
