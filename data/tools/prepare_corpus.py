#!/usr/bin/env python3
"""Builds the training material of Sutra Studio's embedded default model from the King James
Version of the Bible as Debian's bible-kjv package prints it (public domain text).

Writes into OUT_DIR:
  corpus.txt        pre-training text: every chapter as a heading line and its verses
  heldout.txt       held-out chapters (every 40th chapter), never trained on, for perplexity
  instruct.jsonl    chat rows {"messages": [...]} that teach the chat template: quoting verses,
                    continuing a verse, naming the book of a verse, and who the model is
Uses only the Python standard library. Deterministic (seeded).
usage: prepare_corpus.py OUT_DIR
"""
import json
import random
import re
import subprocess
import sys

HELDOUT_EVERY = 40


def read_bible():
    text = subprocess.run(["bible", "-l0", "Gen1:1-Rev22:21"], check=True, capture_output=True,
                          text=True).stdout
    chapters, book, chap = [], None, None
    for line in text.splitlines():
        m = re.match(r"^(\S.*) (\d+)$", line)
        if m and not line.startswith(" "):
            book, chap = m.group(1), int(m.group(2))
            chapters.append({"book": book, "chapter": chap, "verses": []})
            continue
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m and chapters:
            chapters[-1]["verses"].append((int(m.group(1)), m.group(2).strip()))
    return chapters


def chapter_text(c):
    return "%s %d\n%s\n" % (c["book"], c["chapter"], "\n".join(v for _, v in c["verses"]))


IDENTITY = [
    ("Who are you?", "I am Sutra, a small language model trained on the King James Bible."),
    ("What is your name?", "My name is Sutra."),
    ("Hello!", "Hello! Ask me to quote or continue a verse of the King James Bible."),
    ("What can you do?", "I can quote verses of the King James Bible, continue them, and tell which book a verse comes from."),
]


def instruct_rows(chapters, rng, n):
    verses = [(c["book"], c["chapter"], v, t) for c in chapters for v, t in c["verses"]]
    books = sorted({c["book"] for c in chapters})
    rows = []
    for q, a in IDENTITY:
        for _ in range(60):       # about 4% of the rows: enough to be remembered
            rows.append([q, a])
    while len(rows) < n:
        book, chap, v, t = rng.choice(verses)
        kind = rng.random()
        if kind < 0.4:
            rows.append(["Quote %s %d:%d." % (book, chap, v), t])
        elif kind < 0.8:
            words = t.split()
            if len(words) < 6:
                continue
            cut = rng.randint(3, len(words) - 2)
            rows.append(["Continue the verse: %s" % " ".join(words[:cut]), " ".join(words[cut:])])
        else:
            rows.append(["Which book of the Bible says: \"%s\"" % t, "That is %s, chapter %d, verse %d." % (book, chap, v)])
    rng.shuffle(rows)
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in rows]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    chapters = read_bible()
    assert len(chapters) == 1189, len(chapters)
    train = [c for i, c in enumerate(chapters) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    held = [c for i, c in enumerate(chapters) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    with open(out + "/corpus.txt", "w") as f:
        f.write("\n".join(chapter_text(c) for c in train))
    with open(out + "/heldout.txt", "w") as f:
        f.write("\n".join(chapter_text(c) for c in held))
    rng = random.Random(1611)
    with open(out + "/instruct.jsonl", "w") as f:
        for row in instruct_rows(train, rng, 6000):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print("chapters: %d train, %d held out; verses: %d" % (len(train), len(held),
          sum(len(c["verses"]) for c in chapters)))


if __name__ == "__main__":
    main()
