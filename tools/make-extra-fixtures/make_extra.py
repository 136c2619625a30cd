"""Random-weight test fixtures for shapes that ../shared/fixtures lacks, in the same format (a Hugging Face folder
plus reference.json/reference.bin written by ../train-default-model/make_reference.py):

  mistral-tiny    model_type mistral, sliding_window null, f16 weights, SentencePiece-style BPE with byte
                  fallback (Llama 2 / Mistral layout: <unk> <s> </s>, <0x00>..<0xFF>, "▁" for spaces), [INST] template
  llama31-tiny    llama with llama3 rope scaling (factor 8, low/high freq factor 1/4, original context 64),
                  head_dim 24 != hidden/heads, MQA (one KV head), untied embeddings, a prompt longer than 64 tokens,
                  Llama 3.1-style template (date_string default, system message trimmed)
  qwen2-sharded   qwen2 (q/k/v biases) saved in several safetensors shards with model.safetensors.index.json,
                  Qwen 2.5-style template (default system message)

    python3 make_extra.py CORPUS_DIR OUT_DIR

Runs where torch, transformers (5.x) and tokenizers are installed (the GPU machine's image; no GPU needed).
"""
import json
import os
import random
import sys

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train-default-model"))
import corpus_io as cio  # noqa: E402
import make_reference as ref  # noqa: E402

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
LLAMA31_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
MISTRAL_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.first and system_message != '' %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
    "{%- else %}{{- ' ' + message['content'] + eos_token }}{%- endif %}"
    "{%- endfor %}"
)
QWEN25_TEMPLATE = (
    "{%- if messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
STRINGS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "It is a truth universally acknowledged",
    "Ünïcödé façade naïve — “quotes” and 🚀 emoji; 蓝牙耳机",
    "  two  spaces,\ttabs\nand new lines   ",
    "for (int i = 0; i < n; i++) { x += y[i]; } // 42",
]
CONVERSATION = [{"role": "system", "content": "  You are terse.  "}, {"role": "user", "content": "Who are you?"},
                {"role": "assistant", "content": "A fixture."}, {"role": "user", "content": "Tell me my fortune."}]


def sentencepiece_style_bpe(texts, vocab_size):
    """A Llama 2 / Mistral style tokenizer.json: "▁" marks spaces, unknown characters fall back to byte tokens."""
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 256, special_tokens=["<unk>", "<s>", "</s>"],
                                  limit_alphabet=90, min_frequency=2, show_progress=False)
    staging = Tokenizer(models.BPE(unk_token="<unk>"))
    staging.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    staging.train_from_iterator(texts, trainer)
    learned = staging.get_vocab()
    # SentencePiece's layout: specials 0..2, the 256 byte tokens 3..258, then the learned pieces by their rank.
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    for piece, _ in sorted(learned.items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)
              for m in json.loads(staging.to_str())["model"]["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    return tok


def save_tokenizer(tok, d, cfg):
    tok.save(os.path.join(d, "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
           "model_max_length": 512, **cfg}
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as fh:
        json.dump(cfg, fh, indent=1, ensure_ascii=False)


def randomize(model):
    """Norm weights away from 1 and biases away from 0, so an engine that ignores either fails the reference."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
    return model.eval()


def folder_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def build(out, name, model, dtype, tok, tok_cfg, family, prompts, shard_bytes=None):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    save_tokenizer(tok, d, tok_cfg)
    kwargs = {"max_shard_size": shard_bytes} if shard_bytes else {}
    model.to(dtype).save_pretrained(d, **kwargs)
    n_ref = ref.write_reference(d, family, STRINGS, [CONVERSATION], prompts)
    files = sorted(os.listdir(d))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, reference.bin {n_ref} B, "
          f"folder {folder_bytes(d)} B, files {files}", flush=True)
    return d


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    corpus_dir, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(4321)
    rng = random.Random(4321)
    import transformers
    corpus = cio.load_corpus(corpus_dir)
    texts = [t for _, t in cio.plain_documents(corpus)]
    rng.shuffle(texts)
    texts = texts[:3000]

    # mistral-tiny
    tok = sentencepiece_style_bpe(texts, 700)
    cfg = transformers.MistralConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=160,
                                     num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                                     max_position_embeddings=512, sliding_window=None, rms_norm_eps=1e-5,
                                     rope_theta=1000000.0, tie_word_embeddings=False, initializer_range=0.15,
                                     bos_token_id=1, eos_token_id=2)
    build(out, "mistral-tiny", randomize(transformers.MistralForCausalLM(cfg)), torch.float16, tok,
          {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
           "add_bos_token": True, "add_eos_token": False, "chat_template": MISTRAL_TEMPLATE},
          "mistral", [STRINGS[0], STRINGS[2]])

    # llama31-tiny
    tok = cio.train_bytelevel_bpe(texts, 640, LLAMA3_SPECIALS)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                                       special_tokens=[("<|begin_of_text|>", bos)])
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64, "rope_theta": 500000.0}
    cfg = transformers.LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=24,
                                   max_position_embeddings=512, rms_norm_eps=1e-5, rope_parameters=rope,
                                   tie_word_embeddings=False, initializer_range=0.15, bos_token_id=bos,
                                   eos_token_id=[tok.token_to_id("<|end_of_text|>"), tok.token_to_id("<|eot_id|>")])
    got = cfg.rope_parameters
    if got.get("rope_type") != "llama3" or got.get("factor") != 8.0:
        raise SystemExit(f"transformers did not keep the llama3 rope parameters: {got}")
    # Past original_max_position_embeddings (64), but short enough to keep reference.bin small.
    long_para = next(p for _, paras in corpus.austen for p in paras if 80 <= len(tok.encode(p).ids) <= 110)
    d = build(out, "llama31-tiny", randomize(transformers.LlamaForCausalLM(cfg)), torch.float32, tok,
              {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA31_TEMPLATE},
              "llama3", [STRINGS[0], long_para])
    with open(os.path.join(d, "config.json")) as fh:
        print("llama31-tiny rope in config.json:", {k: v for k, v in json.load(fh).items() if "rope" in k})

    # qwen2-sharded
    tok = cio.train_bytelevel_bpe(texts, 600, cio.CHATML_SPECIALS)
    cfg = transformers.Qwen2Config(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=1000000.0,
                                   tie_word_embeddings=False, initializer_range=0.15,
                                   bos_token_id=None, eos_token_id=tok.token_to_id(cio.IM_END))
    d = build(out, "qwen2-sharded", randomize(transformers.Qwen2ForCausalLM(cfg)), torch.float32, tok,
              {"bos_token": None, "eos_token": cio.IM_END, "pad_token": cio.ENDOFTEXT,
               "chat_template": QWEN25_TEMPLATE}, "chatml", [STRINGS[0], STRINGS[3]], shard_bytes=300_000)
    shards = [f for f in os.listdir(d) if f.startswith("model-") and f.endswith(".safetensors")]
    if "model.safetensors.index.json" not in os.listdir(d) or not 2 <= len(shards) <= 4:
        raise SystemExit(f"qwen2-sharded: expected an index and 2-4 shards, got {sorted(os.listdir(d))}")


if __name__ == "__main__":
    main()
