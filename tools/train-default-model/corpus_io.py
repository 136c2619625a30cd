"""Reading the corpus that prepare_corpus.sh writes, and training byte-level BPE tokenizers on it.

Shared by train.py (the default model) and ../make-extra-fixtures/make_extra.py (random-weight test fixtures).
"""
import glob
import os
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

# ChatML: the template below is what tokenizer_config.json carries; train.py renders its instruction data with the
# same strings so that what the model learns matches what an engine renders.
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
CHATML_SPECIALS = [ENDOFTEXT, IM_START, IM_END]
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def render_chatml(messages, add_generation_prompt=False):
    """Python twin of CHATML_TEMPLATE (make_reference.py checks that transformers' rendering agrees)."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


@dataclass
class Corpus:
    austen: list      # [(book name, [paragraph, ...]), ...]
    verses: list      # [(book, chapter, verse, text), ...] King James Version
    fortunes: list    # [entry text, ...]


def load_corpus(folder):
    if not os.path.isdir(folder):
        raise SystemExit(f"corpus folder {folder!r} not found: run prepare_corpus.sh first")
    austen = []
    for path in sorted(glob.glob(os.path.join(folder, "austen", "*.txt"))):
        with open(path, encoding="utf-8") as fh:
            paras = [line.strip() for line in fh if line.strip()]
        austen.append((os.path.basename(path)[:-4], paras))
    verses = []
    with open(os.path.join(folder, "kjv.tsv"), encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                raise SystemExit(f"kjv.tsv line {n}: expected 4 tab-separated fields")
            verses.append((parts[0], int(parts[1]), int(parts[2]), parts[3]))
    fortunes = []
    for path in sorted(glob.glob(os.path.join(folder, "fortunes", "*.txt"))):
        with open(path, encoding="utf-8") as fh:
            for entry in fh.read().split("\n%\n"):
                entry = entry.strip("\n%").rstrip()
                if entry.strip():
                    fortunes.append(entry)
    if not austen or not verses or not fortunes:
        raise SystemExit(f"corpus folder {folder!r} is incomplete (austen {len(austen)} books, "
                         f"{len(verses)} verses, {len(fortunes)} fortunes)")
    return Corpus(austen, verses, fortunes)


def kjv_chapters(verses):
    """Groups verses by (book, chapter), keeping the Bible's order."""
    chapters, key = [], None
    for book, chap, verse, text in verses:
        if (book, chap) != key:
            key = (book, chap)
            chapters.append((book, chap, []))
        chapters[-1][2].append((verse, text))
    return chapters


def plain_documents(corpus, paragraphs_per_doc=12):
    """The corpus as (source, text) documents: Austen in runs of paragraphs, the Bible by chapter, one fortune each."""
    docs = []
    for book, paras in corpus.austen:
        for i in range(0, len(paras), paragraphs_per_doc):
            docs.append(("austen", "\n".join(paras[i:i + paragraphs_per_doc])))
    for book, chap, verses in kjv_chapters(corpus.verses):
        docs.append(("kjv", f"{book} {chap}\n" + "\n".join(f"{v} {t}" for v, t in verses)))
    docs.extend(("fortune", f) for f in corpus.fortunes)
    return docs


def train_bytelevel_bpe(texts, vocab_size, specials):
    """Byte-level BPE as GPT-2/Llama 3/Qwen use it: every byte is in the base alphabet, so nothing is unknown."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok
