#!/usr/bin/python3
"""An independent, pure-Python BERT uncased tokenizer, and a cross-check of tijepa's C tokenizer.

The reference follows the semantics of Google's BERT tokenization.py (BasicTokenizer with
do_lower_case=True, then WordpieceTokenizer), written here from the algorithm:
  clean      drop NUL, U+FFFD and control characters (category C*, except \\t \\n \\r, which
             like category Zs become spaces);
  CJK        put spaces around CJK ideographs;
  split      str.split() on white space;
  per token  str.lower(); NFD; drop category Mn; split off each punctuation character
             (ASCII 33-47, 58-64, 91-96, 123-126 and category P*);
  WordPiece  a word of more than 100 characters is [UNK]; otherwise greedy longest-match-first
             with "##" continuations, and [UNK] for the whole word if some position cannot be
             matched;
  encode     [CLS] + pieces (truncated to max_len - 2) + [SEP], padded with [PAD].

Cross-check (a ctest test):
    wordpiece_ref.py --cli BUILD/tests/tokenize_cli --workdir DIR
writes a vocab.txt, runs tokenize_cli on a list of tricky strings and on a few thousand random
strings (fixed seed), and compares ids and [UNK] counts for max_len 512 and 8. Exit 0 when every
line matches, 1 otherwise (the first differences are printed).
"""
import argparse
import os
import random
import subprocess
import sys
import unicodedata

MAX_WORD_CHARS = 100
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(ch):
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def basic_tokenize(text):
    cleaned = []
    for ch in text:
        if ord(ch) == 0 or ord(ch) == 0xFFFD or is_control(ch):
            continue
        cleaned.append(" " if is_whitespace(ch) else ch)
    spaced = []
    for ch in "".join(cleaned):
        spaced.append(" %s " % ch if is_cjk(ch) else ch)
    words = []
    for token in "".join(spaced).split():
        token = unicodedata.normalize("NFD", token.lower())
        token = "".join(ch for ch in token if unicodedata.category(ch) != "Mn")
        current = []
        for ch in token:
            if is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
    return words


def wordpiece(word, vocab):
    if len(word) > MAX_WORD_CHARS:
        return [vocab["[UNK]"]]
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while end > start:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                found = vocab[sub]
                break
            end -= 1
        if found is None:
            return [vocab["[UNK]"]]
        pieces.append(found)
        start = end
    return pieces


def encode(text, vocab, max_len):
    ids = []
    for word in basic_tokenize(text):
        ids.extend(wordpiece(word, vocab))
    ids = [vocab["[CLS]"]] + ids[:max_len - 2] + [vocab["[SEP]"]]
    return ids


def load_vocab(path):
    vocab = {}
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines):
        line = line[:-1] if line.endswith("\r") else line
        if line:
            vocab[line] = i  # a repeated token keeps its last id
    return vocab


TRICKY = [
    "", " ", "   \t\n ", "!!!", "Hello, World!", "hello,world!!", "don't stop", "e-mail a...b",
    "[CLS] [SEP] [PAD] [UNK] ##ing", "Café Déjà vu", "naïve Ångström ÉCOLE", "straße STRASSE",
    "İstanbul ıi", "ΟΔΥΣΣΕΥΣ", "ΣΑΣ. Σ aΣb ΑΣ'Σ x Σ y ΑΣ\u0301 ΑΣ\u200b ΑΣ1", "Άλφα βήτα",
    "Tiếng Việt có dấu", "¿Qué tal? «quoted» „low“", "100% $5.00 #1 @user ~tilde^caret`",
    "我爱北京天安门", "日本語のテキスト、句読点。", "abc中文def", "한국어 텍스트", "\uf900\ufa0e",
    "a" * 100, "b" * 101, "c" * 99 + "é", "un" + "x" * 120 + "!", "xyzzy quux",
    "a    b", "a\tb\nc\r\nd", "a\x01b\x7fc\x1bd", "\u200bzero\u200dwidth", "\ufeffbom",
    "\ufffdreplacement", "I \u2764\ufe0f cats \U0001f408 \U0001f600!", "\U0001f44d\U0001f3fd",
    "\U0001f1eb\U0001f1f7", "e\u0301 a\u0308\u0304 \u0301lone", "\ufb01 ligature \ufb00",
    "\u216b \uff21\uff22\uff23", "\u00a0nbsp\u3000ideographic\u2028line\u2029para\x85nel",
    "\u01c4\u01c5\u01c6", "مَرْحَبًا بِكُمْ", "שָׁלוֹם", "नमस्ते दुनिया", "สวัสดีครับ",
    "\ue000private \U000e0041tag", "\u0378unassigned", "tab\there", "end.", ".start",
    "A.B.C.", "O'Neil's", "rock'n'roll", "3.14159", "x²+y²=z²", "½ ¾ ‰", "co-operate",
    "Ⓐⓑ", "ǅemal", "ΐ ΰ", "ﬃ ﬄ", "K\u212a\u2126\u212b", "\u1e9e\u00df", "\u0130\u0307",
    "the quick brown fox jumps over the lazy dog " * 4, "playing played player plays",
    "unwanted unaffable", "Σ" * 3, "ΣΣ ΣaΣ", "\u03a3\u0345", "κόσμε", "ΑΒΓΔ ΕΖΗΘ",
]

INVALID_HEX = ["ff", "c080", "eda080", "f4908080", "e282", "61ff62", "c3", "80", "f8888080",
               "e080af", "fe"]

RANDOM_ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3
    + list(" " * 20 + "\t\n\r")
    + list(".,;:!?'\"-_()[]{}<>/\\|@#$%^&*+=~`")
    + list("éèêëàâäôöûüçñÉÀÖÜÇÑßøåæœıİ")
    + list("ΑΒΓΔΣσςαβγδΆάΐ")
    + list("我爱北京天安门中文日本語한국어")
    + ["\u0301", "\u0308", "\u0345", "\u200b", "\u200d", "\ufeff", "\ufffd", "\x01", "\x7f",
       "\u00a0", "\u3000", "\u2028", "\x85", "\u2764", "\ufe0f", "\U0001f600", "\U0001f408",
       "\ufb01", "\uff21", "\u216b", "\u01c5", "\u0130", "\u212b", "\uf900", "\ue000",
       "\U000e0041", "\u0378", "\u037e", "\u0387", "\u1fef", "\u00b7", "\u2019", "\u0964"]
)


def random_strings(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 80, 130])
        out.append("".join(rng.choice(RANDOM_ALPHABET) for _ in range(length)))
    # Some long runs without white space, to reach the 100-character word limit.
    for i in range(40):
        out.append("".join(rng.choice("abcéΣσ") for _ in range(95 + i % 12)))
    return out


def build_vocab(path, strings):
    """Specials, then characters and ## characters of about two thirds of the words seen, and
    some whole words and pieces, so that both matches and [UNK]s occur. Includes a repeated token
    and an empty line (ids are line numbers)."""
    words = []
    for s in strings:
        words.extend(basic_tokenize(s))
    chars = sorted({ch for w in words for ch in w})
    rng = random.Random(7)
    kept = [ch for ch in chars if rng.random() < 0.67 or ch.isascii()]
    lines = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    lines += kept + ["##" + ch for ch in kept if rng.random() < 0.8 or ch.isascii()]
    common = sorted({w for w in words if len(w) > 1})
    lines += [w for w in common if rng.random() < 0.3]
    lines += ["play", "##ing", "##ed", "##er", "##s", "un", "##want", "##ed", "##aff", "##able",
              "the", "", "quick", "caf", "##e", "ΣΣ"]
    lines.append("[UNK]")  # repeated: the later id wins
    with open(path, "w", encoding="utf-8", newline="") as f:
        for line in lines:
            f.write(line + "\n")


def run_cli(cli, vocab_path, max_len, hex_lines):
    proc = subprocess.run([cli, vocab_path, str(max_len)], input="\n".join(hex_lines) + "\n",
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit("tokenize_cli failed (%d): %s" % (proc.returncode, proc.stderr))
    return proc.stdout.split("\n")[:len(hex_lines)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--random", type=int, default=3000)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    strings = TRICKY + random_strings(args.random, 1234)
    # NUL ends a C string; the C side cannot see text after it, so it is not tested here.
    assert not any("\0" in s for s in strings)
    vocab_path = os.path.join(args.workdir, "vocab.txt")
    build_vocab(vocab_path, strings)
    vocab = load_vocab(vocab_path)
    unk = vocab["[UNK]"]
    hex_lines = [s.encode("utf-8").hex() for s in strings] + INVALID_HEX
    failures = 0
    unk_seen = 0
    for max_len in (512, 8):
        got = run_cli(args.cli, vocab_path, max_len, hex_lines)
        for i, line in enumerate(hex_lines):
            raw = bytes.fromhex(line)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                expect = "ERR"
            else:
                ids = encode(text, vocab, max_len)
                n_unk = sum(1 for x in ids if x == unk)
                unk_seen += n_unk
                expect = "%d|%s" % (n_unk, " ".join(map(str, ids)))
            if got[i] != expect:
                failures += 1
                if failures <= 10:
                    print("MISMATCH max_len=%d input=%r\n  reference: %s\n  tijepa:    %s"
                          % (max_len, raw, expect, got[i]))
    total = 2 * len(hex_lines)
    print("wordpiece_ref: %d/%d encodings identical (%d tricky, %d random, %d invalid UTF-8; "
          "%d [UNK] tokens in the reference output)"
          % (total - failures, total, len(TRICKY), len(strings) - len(TRICKY), len(INVALID_HEX),
             unk_seen))
    if unk_seen == 0:
        print("wordpiece_ref: the vocabulary produced no [UNK]: the check is too weak")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
