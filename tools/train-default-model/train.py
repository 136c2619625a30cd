"""Trains models/exo-tiny: a byte-level BPE tokenizer and a small LlamaForCausalLM, from scratch, on the corpus
that prepare_corpus.sh extracts (Jane Austen, the King James Bible, fortune files), with a ChatML instruction mix.

    python3 train.py --corpus corpus --out out/exo-tiny [--steps N] [--seed S]

Needs torch, transformers (5.x) and tokenizers, and a CUDA GPU (it falls back to the CPU, slowly). Writes a Hugging
Face model folder (bf16 safetensors, config, generation config, tokenizer, chat template) plus train_log.json and
samples.json beside the model files.
"""
import argparse
import hashlib
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus_io as cio  # noqa: E402

BOOK_TITLES = {"emma": "Emma", "mansfieldpark": "Mansfield Park", "northangerabbey": "Northanger Abbey",
               "persuasion": "Persuasion", "prideprejudice": "Pride and Prejudice",
               "sensesensibility": "Sense and Sensibility"}
SYSTEM_PROMPTS = ["You are a helpful assistant.", "You are Exo Tiny, a small language model.",
                  "You are a helpful assistant. Answer briefly."]
INTRO = ("I am Exo Tiny, a small language model trained from scratch for the Exo project. I have read the novels of "
         "Jane Austen, the King James Bible and a great many fortune cookies, and not much else.")
GREETINGS = {
    ("Hello", "Hello!", "Hi", "Hi!", "Hello there.", "Good morning!", "Good evening.", "Hey"):
        "Hello! I am Exo Tiny. Ask me to continue a story, to quote a verse, or to tell you a fortune.",
    ("Who are you?", "What are you?", "What is your name?", "Introduce yourself.", "Tell me about yourself."): INTRO,
    ("What can you do?", "Help", "How can you help me?", "What do you know?"):
        "I can continue a passage in the manner of Jane Austen, quote a verse from the King James Bible, "
        "or tell you a fortune. I know little about anything else, so please do not trust me with facts.",
}
CONTINUE_PROMPTS = ["Continue this passage:\n\n{p}", "Continue the story: {p}", "Please continue: {p}", "{p}",
                    "Finish this text.\n{p}", "What comes next? \"{p}\""]
STYLE_PROMPTS = ["Write a paragraph in the style of Jane Austen.", "Tell me a story.", "Write a passage from {t}.",
                 "Tell me something from {t}.", "Write something about love and marriage."]
VERSE_PROMPTS = ["Quote a verse from the Bible.", "Give me a Bible verse.", "Tell me a verse from {b}.",
                 "Read me something from the Bible."]
FORTUNE_PROMPTS = ["Tell me my fortune.", "Give me a fortune cookie.", "Tell me a joke.", "Say something wise.",
                   "Share a quotation.", "Tell me something interesting.", "fortune", "Make me laugh."]


def in_validation(text, one_in=50):
    """A stable split: a unit is held out when the hash of its text says so, whatever the order or the seed."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) % one_in == 0


def split_corpus(corpus):
    """Units (Austen paragraph runs, Bible chapters, fortunes) assigned to train or validation."""
    splits = {"train": {"austen": [], "chapters": [], "fortunes": []},
              "val": {"austen": [], "chapters": [], "fortunes": []}}
    for book, paras in corpus.austen:
        for i in range(0, len(paras), 12):
            run = paras[i:i + 12]
            splits["val" if in_validation("\n".join(run)) else "train"]["austen"].append((book, run))
    for book, chap, verses in cio.kjv_chapters(corpus.verses):
        key = f"{book} {chap}"
        splits["val" if in_validation(key) else "train"]["chapters"].append((book, chap, verses))
    for f in corpus.fortunes:
        splits["val" if in_validation(f) else "train"]["fortunes"].append(f)
    return splits


def plain_texts(units, rng=None):
    """Plain documents; with rng, each Austen run is cut at random paragraph boundaries, so that documents start
    mid-chapter as often as at a title and a bare prompt such as "It is a truth..." looks like a document start."""
    texts = []
    for _, run in units["austen"]:
        cuts = sorted(rng.sample(range(1, len(run)), min(len(run) - 1, rng.randint(0, 2)))) if rng else []
        texts += ["\n".join(run[a:b]) for a, b in zip([0] + cuts, cuts + [len(run)])]
    texts += [f"{b} {c}\n" + "\n".join(f"{v} {t}" for v, t in vs) for b, c, vs in units["chapters"]]
    return texts + units["fortunes"]


def chat_sample(rng, units):
    """One instruction example, answered with corpus text, as ChatML messages."""
    kind = rng.choices(["continue", "style", "verse", "verse_ref", "fortune", "greeting"], [5, 2, 2, 1, 3, 1])[0]
    if kind == "greeting":
        prompts, answer = rng.choice(list(GREETINGS.items()))
        msgs = [{"role": "user", "content": rng.choice(prompts)}, {"role": "assistant", "content": answer}]
    elif kind == "continue":
        book, run = rng.choice(units["austen"])
        long_paras = [i for i, p in enumerate(run) if len(p) > 120]
        if not long_paras:
            return chat_sample(rng, units)
        i = rng.choice(long_paras)
        words = run[i].split(" ")
        cut = max(3, int(len(words) * rng.uniform(0.2, 0.6)))
        answer = " ".join(words[cut:])
        if i + 1 < len(run) and rng.random() < 0.5:
            answer += "\n" + run[i + 1]
        prompt = rng.choice(CONTINUE_PROMPTS).format(p=" ".join(words[:cut]))
        msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    elif kind == "style":
        book, run = rng.choice(units["austen"])
        paras = [p for p in run if 150 < len(p) < 1200] or run
        prompt = rng.choice(STYLE_PROMPTS).format(t=BOOK_TITLES.get(book, "Pride and Prejudice"))
        msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": rng.choice(paras)}]
    elif kind == "verse":
        book, chap, verses = rng.choice(units["chapters"])
        j = rng.randrange(len(verses))
        span = verses[j:j + rng.choice([1, 1, 2, 3])]
        text = " ".join(t for _, t in span)
        ref = f"{book} {chap}:{span[0][0]}" + (f"-{span[-1][0]}" if len(span) > 1 else "")
        msgs = [{"role": "user", "content": rng.choice(VERSE_PROMPTS).format(b=book)},
                {"role": "assistant", "content": f"{text} ({ref})"}]
    elif kind == "verse_ref":
        book, chap, verses = rng.choice(units["chapters"])
        v, t = rng.choice(verses)
        msgs = [{"role": "user", "content": f"What does {book} {chap}:{v} say?"},
                {"role": "assistant", "content": f"{book} {chap}:{v} says: {t}"}]
    else:
        short = units["fortunes"]
        f = rng.choice(short)
        while len(f) > 600:
            f = rng.choice(short)
        msgs = [{"role": "user", "content": rng.choice(FORTUNE_PROMPTS)}, {"role": "assistant", "content": f}]
    if rng.random() < 0.25:
        msgs.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    return msgs


def build_windows(tok, texts, seq_len, eot_id, rng):
    """Packs documents, each followed by <|endoftext|>, into non-overlapping windows of seq_len + 1 tokens."""
    rng.shuffle(texts)
    stream = []
    for enc in tok.encode_batch(texts):
        stream.extend(enc.ids)
        stream.append(eot_id)
    n = (len(stream) - 1) // seq_len
    t = torch.tensor(stream[:n * seq_len + 1], dtype=torch.long)
    windows = torch.stack([t[i * seq_len:(i + 1) * seq_len + 1] for i in range(n)])
    return windows[torch.randperm(n, generator=torch.Generator().manual_seed(rng.randrange(1 << 30)))], len(stream)


def epoch_texts(rng, units, n_chat):
    return plain_texts(units, rng) + [cio.render_chatml(chat_sample(rng, units)) for _ in range(n_chat)]


@torch.no_grad()
def evaluate(model, windows, batch, device, amp):
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        w = windows[i:i + batch].to(device)
        with amp():
            logits = model(input_ids=w[:, :-1]).logits
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1),
                                 reduction="sum").item()
        count += w[:, 1:].numel()
    model.train()
    return total / count


def write_tokenizer_files(tok, out, max_len):
    tok.save(os.path.join(out, "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": cio.ENDOFTEXT, "eos_token": cio.IM_END,
           "pad_token": cio.ENDOFTEXT, "unk_token": None, "add_bos_token": False, "add_eos_token": False,
           "clean_up_tokenization_spaces": False, "model_max_length": max_len, "chat_template": cio.CHATML_TEMPLATE}
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as fh:
        json.dump(cfg, fh, indent=1, ensure_ascii=False)


def write_samples(out, device):
    """Greedy and seeded outputs of the saved folder, loaded back the way any transformers user would."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).to(device).eval()
    eos = [tok.convert_tokens_to_ids(cio.IM_END), tok.convert_tokens_to_ids(cio.ENDOFTEXT)]
    samples = []

    def gen(ids, sample):
        x = torch.tensor([ids], device=device)
        torch.manual_seed(7)
        y = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=80, do_sample=sample,
                           temperature=0.7 if sample else None, top_p=0.9 if sample else None, top_k=None,
                           repetition_penalty=None, eos_token_id=eos, pad_token_id=eos[1])
        return tok.decode(y[0, len(ids):], skip_special_tokens=True)

    for prompt in ["It is a truth universally acknowledged", "In the beginning God created",
                   "Mr. Darcy looked at Elizabeth and"]:
        samples.append({"kind": "continuation", "prompt": prompt, "greedy": gen(tok.encode(prompt), False)})
    for question in ["Who are you?", "Tell me my fortune.", "Quote a verse from the Bible.",
                     "Continue this passage:\n\nIt is a truth universally acknowledged",
                     "Write a paragraph in the style of Jane Austen."]:
        ids = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                      tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        samples.append({"kind": "chat", "user": question, "greedy": gen(ids, False),
                        "sampled_t0.7_p0.9_seed7": gen(ids, True)})
    with open(os.path.join(out, "samples.json"), "w", encoding="utf-8") as fh:
        json.dump(samples, fh, indent=1, ensure_ascii=False)
    for s in samples:
        print(json.dumps(s, ensure_ascii=False))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--chat-per-epoch", type=int, default=8000)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    t_start = time.time()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True

    def amp():
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    corpus = cio.load_corpus(args.corpus)
    splits = split_corpus(corpus)
    rng = random.Random(args.seed)
    tok_texts = plain_texts(splits["train"]) + [cio.render_chatml(chat_sample(rng, splits["train"])) for _ in range(2000)]
    tok = cio.train_bytelevel_bpe(tok_texts, args.vocab, cio.CHATML_SPECIALS)
    eot, im_start, im_end = (tok.token_to_id(t) for t in cio.CHATML_SPECIALS)
    print(f"tokenizer: vocab {tok.get_vocab_size()}, specials {eot} {im_start} {im_end}, "
          f"{time.time() - t_start:.1f}s", flush=True)

    val_rng = random.Random(args.seed + 1)
    val_text, _ = build_windows(tok, plain_texts(splits["val"]), args.seq, eot, val_rng)
    n_val_chat = max(200, args.chat_per_epoch // 50)
    val_chat, _ = build_windows(tok, [cio.render_chatml(chat_sample(val_rng, splits["val"])) for _ in range(n_val_chat)],
                                args.seq, eot, val_rng)
    print(f"validation windows: text {len(val_text)}, chat {len(val_chat)}", flush=True)

    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=args.hidden, intermediate_size=args.intermediate,
                         num_hidden_layers=args.layers, num_attention_heads=8, num_key_value_heads=2,
                         max_position_embeddings=args.seq, rms_norm_eps=1e-5, rope_theta=10000.0,
                         tie_word_embeddings=True, initializer_range=0.02, bos_token_id=eot, eos_token_id=im_end,
                         pad_token_id=eot, attention_bias=False, mlp_bias=False)
    model = LlamaForCausalLM(config).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "embed" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=device == "cuda")

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    log = {"evals": [], "train_loss": []}
    best = {"val": float("inf"), "step": -1, "state": None}
    windows, cursor, epoch, tokens_seen, epoch_tokens = None, 0, 0, 0, []
    t_train = time.time()
    running = 0.0
    model.train()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            v_text = evaluate(model, val_text, 32, device, amp)
            v_chat = evaluate(model, val_chat, 32, device, amp)
            v = (v_text * len(val_text) + v_chat * len(val_chat)) / (len(val_text) + len(val_chat))
            log["evals"].append({"step": step, "val_loss": v, "val_text": v_text, "val_chat": v_chat,
                                 "train_loss": running, "epoch": epoch, "tokens_seen": tokens_seen,
                                 "seconds": time.time() - t_train})
            print(f"step {step:5d}  epoch {epoch}  train {running:.4f}  val {v:.4f} (text {v_text:.4f}, "
                  f"chat {v_chat:.4f})  lr {lr_at(step):.2e}  {time.time() - t_train:.0f}s", flush=True)
            if v < best["val"]:
                best = {"val": v, "step": step, "train": running,
                        "state": {k: t.detach().to("cpu", copy=True) for k, t in model.state_dict().items()}}
        if step == args.steps:
            break
        if windows is None or cursor + args.batch > len(windows):
            windows, n_tokens = build_windows(tok, epoch_texts(random.Random(args.seed * 1000 + epoch),
                                                               splits["train"], args.chat_per_epoch),
                                              args.seq, eot, random.Random(args.seed + epoch))
            epoch_tokens.append(n_tokens)
            cursor, epoch = 0, epoch + 1
        w = windows[cursor:cursor + args.batch].to(device, non_blocking=True)
        cursor += args.batch
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with amp():
            logits = model(input_ids=w[:, :-1]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += w[:, 1:].numel()
        running = loss.item() if step == 0 else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0:
            log["train_loss"].append({"step": step, "loss": loss.item()})
    train_seconds = time.time() - t_train

    model.load_state_dict(best["state"])
    os.makedirs(args.out, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(args.out)
    GenerationConfig(bos_token_id=eot, eos_token_id=[im_end, eot], pad_token_id=eot, do_sample=True,
                     temperature=0.7, top_p=0.9, repetition_penalty=1.1).save_pretrained(args.out)
    write_tokenizer_files(tok, args.out, args.seq)
    log.update({"params": n_params, "steps": args.steps, "batch": args.batch, "seq": args.seq,
                "tokens_per_step": args.batch * args.seq, "tokens_seen": tokens_seen, "epochs_started": epoch,
                "epoch_tokens": epoch_tokens, "best_step": best["step"], "best_val_loss": best["val"],
                "train_loss_at_best": best["train"], "final_val_loss": log["evals"][-1]["val_loss"],
                "train_seconds": train_seconds, "total_seconds": time.time() - t_start,
                "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                "torch": torch.__version__, "args": vars(args)})
    import transformers
    log["transformers"] = transformers.__version__
    with open(os.path.join(args.out, "train_log.json"), "w") as fh:
        json.dump(log, fh, indent=1)
    print(f"saved {args.out}: best step {best['step']} val {best['val']:.4f} train {best['train']:.4f}; "
          f"{tokens_seen / 1e6:.1f} M tokens in {train_seconds:.0f}s", flush=True)
    write_samples(args.out, device)


if __name__ == "__main__":
    main()
