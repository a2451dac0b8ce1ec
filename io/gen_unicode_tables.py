#!/usr/bin/python3
"""Generates io/unicode_tables.c: the Unicode tables of tijepa's BERT-style tokenizer.

Run with the system Python (its unicodedata fixes the Unicode version written in the output):
    /usr/bin/python3 io/gen_unicode_tables.py > io/unicode_tables.c

Tables (uni_ascii_flags repeats the flags of code points 0-127 for a fast path):
  * uni_ranges: sorted, disjoint [lo, hi] code point ranges with UNI_* flags (text_internal.h):
      UNI_WS       whitespace: space, \\t \\n \\r, category Zs, and whatever else str.split()
                   splits on once control characters are gone (U+2028, U+2029);
      UNI_DROP     removed by BERT's text cleaning: NUL, U+FFFD and every category C*
                   character except \\t \\n \\r;
      UNI_PUNCT    punctuation: ASCII 33-47, 58-64, 91-96, 123-126 and categories P*;
      UNI_CJK      the CJK ideograph blocks that BERT surrounds with spaces;
      UNI_CASED    cased and not case-ignorable (what str.lower() checks for final sigma);
      UNI_CASE_IGN case-ignorable (skipped by the final-sigma context).
  * uni_fold: for every code point c (except Hangul syllables, decomposed arithmetically in C)
    where it is not the identity, the code points of strip_mn(NFD(c.lower())) — lower-casing
    and accent stripping of one character, as BERT's uncased BasicTokenizer does per token.
    U+03A3 maps to U+03C3 here; the final-sigma rule is applied in C with the two case flags.

The final-sigma properties are measured on str.lower() itself rather than derived from
property files, so the C side reproduces exactly what this Python's lower() does.
"""
import sys
import unicodedata

MAX_CP = 0x110000

UNI_WS, UNI_DROP, UNI_PUNCT, UNI_CJK, UNI_CASED, UNI_CASE_IGN = 1, 2, 4, 8, 16, 32

CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]

HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3


def is_drop(c):
    if c in "\t\n\r":
        return False
    cp = ord(c)
    return cp == 0 or cp == 0xFFFD or unicodedata.category(c).startswith("C")


def is_bert_ws(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def is_ws(c):
    # After cleaning, BERT splits with str.split(), which also splits on characters such as
    # U+2028 that cleaning keeps; control characters are gone by then.
    return is_bert_ws(c) or (c.isspace() and not is_drop(c))


def is_punct(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def is_cjk(cp):
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def sigma_after(s):
    return s.lower()[-1]


def case_flags(c):
    # CPython's final-sigma rule: Σ becomes ς when preceded by a cased character (skipping
    # case-ignorable ones) and not followed by one. Probe it to classify c.
    cased_not_ign = sigma_after(c + "\u03a3") == "\u03c2"
    ign_or_cased = sigma_after("A" + c + "\u03a3") == "\u03c2"
    flags = 0
    if cased_not_ign:
        flags |= UNI_CASED
    elif ign_or_cased:
        flags |= UNI_CASE_IGN
    # The lookahead side must agree: Σ stays σ only when a cased character follows.
    expect = "\u03c3" if flags & UNI_CASED else "\u03c2"
    assert ("A\u03a3" + c).lower()[1] == expect, hex(ord(c))
    return flags


def fold(c):
    d = unicodedata.normalize("NFD", c.lower())
    return "".join(x for x in d if unicodedata.category(x) != "Mn")


def hangul_fold(cp):
    s = cp - HANGUL_FIRST
    out = [0x1100 + s // 588, 0x1161 + (s % 588) // 28]
    if s % 28:
        out.append(0x11A7 + s % 28)
    return out


def main():
    flags = [0] * MAX_CP
    folds = []
    for cp in range(MAX_CP):
        if 0xD800 <= cp <= 0xDFFF:
            flags[cp] = UNI_DROP  # never reached: UTF-8 validation rejects surrogates
            continue
        c = chr(cp)
        f = 0
        if is_drop(c):
            f |= UNI_DROP
        elif is_ws(c):
            f |= UNI_WS
        if is_punct(c):
            f |= UNI_PUNCT
        if is_cjk(cp):
            f |= UNI_CJK
        f |= case_flags(c)
        flags[cp] = f
        m = fold(c)
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            assert [ord(x) for x in m] == hangul_fold(cp), hex(cp)
            continue
        if m != c and not f & (UNI_WS | UNI_DROP):  # those are never folded
            folds.append((cp, [ord(x) for x in m]))
    # Folded characters feed the punctuation split and WordPiece; they must never be
    # whitespace or dropped characters (BERT cleans before folding).
    for cp, out in folds:
        for o in out:
            assert not (flags[o] & (UNI_WS | UNI_DROP)), (hex(cp), hex(o))
    assert not any(flags[o] & (UNI_WS | UNI_DROP) for cp in range(HANGUL_FIRST, HANGUL_LAST + 1)
                   for o in hangul_fold(cp))

    ranges = []
    cp = 0
    while cp < MAX_CP:
        f = flags[cp]
        hi = cp
        while hi + 1 < MAX_CP and flags[hi + 1] == f:
            hi += 1
        if f:
            ranges.append((cp, hi, f))
        cp = hi + 1

    out = sys.stdout
    out.write("// Generated by io/gen_unicode_tables.py from Python %s unicodedata (Unicode %s).\n"
              % (sys.version.split()[0], unicodedata.unidata_version))
    out.write("// Regenerate with: /usr/bin/python3 io/gen_unicode_tables.py > io/unicode_tables.c\n")
    out.write("// clang-format off\n#include \"text_internal.h\"\n\n")
    out.write('const char UNI_VERSION[] = "%s";\n\n' % unicodedata.unidata_version)
    out.write("const uint8_t uni_ascii_flags[128] = {\n")
    for i in range(0, 128, 16):
        out.write("    " + " ".join("%d," % f for f in flags[i:i + 16]) + "\n")
    out.write("};\n\n")
    out.write("const UniRange uni_ranges[] = {\n")
    for lo, hi, f in ranges:
        out.write("    {0x%04X, 0x%04X, %d},\n" % (lo, hi, f))
    out.write("};\nconst int uni_ranges_count = %d;\n\n" % len(ranges))
    pool = []
    out.write("const UniFold uni_fold[] = {\n")
    for cp, m in folds:
        out.write("    {0x%04X, %d, %d},\n" % (cp, len(pool), len(m)))
        pool.extend(m)
    out.write("};\nconst int uni_fold_count = %d;\n\n" % len(folds))
    out.write("const uint32_t uni_fold_pool[] = {\n")
    for i in range(0, len(pool), 10):
        out.write("    " + " ".join("0x%04X," % x for x in pool[i:i + 10]) + "\n")
    out.write("};\n")
    assert max(len(m) for _, m in folds) <= UNI_FOLD_MAX
    assert len(pool) < 65536  # UniFold.offset is 16-bit
    # The ASCII fast path in C relies on these.
    for cp in range(128):
        assert fold(chr(cp)) == chr(cp).lower()


UNI_FOLD_MAX = 4

if __name__ == "__main__":
    main()
