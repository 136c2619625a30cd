#!/usr/bin/env bash
# Builds the training corpus for models/exo-tiny from public-domain English text that Debian packages carry.
# Runs on a Debian 12 machine as root (it installs packages); needs no other internet access.
#
#   sudo tools/train-default-model/prepare_corpus.sh [OUT_DIR]     (default: tools/train-default-model/corpus)
#
# Output (plain UTF-8 text, about 11 MB, gitignored; carried to the GPU machine by train.py's caller):
#   austen/<book>.txt   Jane Austen's six novels, one paragraph per line, chapters kept as "Chapter N" lines
#   kjv.tsv             King James Version, one verse per line: book<TAB>chapter<TAB>verse<TAB>text
#   fortunes/<file>.txt fortune-mod cookie files, entries separated by lines holding only "%"
#   SOURCES.tsv         package, version and licence of every source
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-$HERE/corpus}"
PACKAGES=(bible-kjv bible-kjv-text fortunes fortunes-min r-cran-janeaustenr)

if [ "$(id -u)" != 0 ]; then echo "prepare_corpus.sh: run as root (it installs Debian packages)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" r-base-core python3

rm -rf "$OUT"
mkdir -p "$OUT/austen" "$OUT/fortunes"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# Jane Austen: the R package stores each novel as a character vector of wrapped lines.
Rscript -e '
  suppressMessages(library(janeaustenr))
  out <- commandArgs(trailingOnly = TRUE)[1]
  books <- c("sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion")
  for (b in books) writeLines(get(b), file.path(out, paste0(b, ".raw")), useBytes = TRUE)
' "$TMP"

# King James Version: the bible program decodes the compressed data file of bible-kjv-text.
(cd "$TMP" && bible -l0 "Gen1:1-Rev22:21" > kjv.raw)

python3 - "$TMP" "$OUT" <<'PY'
import os, re, sys, glob
tmp, out = sys.argv[1], sys.argv[2]

def unwrap(lines):
    """Joins wrapped lines into paragraphs; blank lines separate paragraphs."""
    paras, cur = [], []
    for line in lines:
        line = line.strip()
        if line:
            cur.append(line)
        elif cur:
            paras.append(" ".join(cur)); cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras

for raw in sorted(glob.glob(os.path.join(tmp, "*.raw"))):
    name = os.path.basename(raw)[:-4]
    if name == "kjv":
        continue
    with open(raw, encoding="utf-8") as fh:
        paras = [re.sub(" {2,}", " ", p) for p in unwrap(fh.read().split("\n"))]
    # Austen marks emphasis with _underscores_; plain text reads better without them.
    paras = [p.replace("_", "") for p in paras]
    with open(os.path.join(out, "austen", name + ".txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(paras) + "\n")

verses = []
book, chapter = None, None
with open(os.path.join(tmp, "kjv.raw"), encoding="utf-8") as fh:
    for line in fh:
        line = line.rstrip("\n")
        m = re.match(r"^(\S.*) (\d+)$", line)
        if m:
            book, chapter = m.group(1), int(m.group(2)); continue
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m:
            verses.append((book, chapter, int(m.group(1)), m.group(2).strip()))
assert len(verses) == 31102, f"KJV: expected 31102 verses, got {len(verses)}"
with open(os.path.join(out, "kjv.tsv"), "w", encoding="utf-8") as fh:
    fh.writelines(f"{b}\t{c}\t{v}\t{t}\n" for b, c, v, t in verses)

# fortune-mod: skip the picture files and the .dat indexes; everything else is text.
src = "/usr/share/games/fortunes"
for f in sorted(os.listdir(src)):
    p = os.path.join(src, f)
    if f.endswith(".dat") or f.endswith(".u8") or os.path.islink(p) or f in ("art", "ascii-art"):
        continue
    with open(p, encoding="utf-8", errors="replace") as fh:
        body = fh.read().replace("\t", "    ")
    with open(os.path.join(out, "fortunes", f + ".txt"), "w", encoding="utf-8") as fh:
        fh.write(body)
print("austen", len(glob.glob(os.path.join(out, "austen", "*"))), "books; kjv", len(verses), "verses; fortunes", len(glob.glob(os.path.join(out, "fortunes", "*"))), "files")
PY

{
  printf 'package\tversion\tlicence\ttext\n'
  ver() { dpkg-query -W -f='${Version}' "$1"; }
  printf 'r-cran-janeaustenr\t%s\tnovels public domain (published 1811-1818); R packaging MIT\tJane Austen, six novels\n' "$(ver r-cran-janeaustenr)"
  printf 'bible-kjv-text\t%s\ttext public domain (King James Version, 1611/1769); packaging GPL-2+\tKing James Bible\n' "$(ver bible-kjv-text)"
  printf 'fortunes\t%s\tBSD (fortune-mod); quotations of various origin, short excerpts\tfortune cookie files\n' "$(ver fortunes)"
  printf 'fortunes-min\t%s\tBSD (fortune-mod)\tfortunes, literature, riddles\n' "$(ver fortunes-min)"
} > "$OUT/SOURCES.tsv"
du -sh "$OUT"
