"""Writes the word-count input: about SIZE_MB MiB (default 100) of text lines
of 0 to 16 words, some empty, some ending in CRLF; deterministic.

usage: python3 bench/io/gen.py PATH [SIZE_MB]
"""
import random
import sys

path = sys.argv[1]
size = int(float(sys.argv[2]) * 1024 * 1024) if len(sys.argv) > 2 else 100 * 1024 * 1024
words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "luasync", "stream",
         "promise", "channel", "lorem", "ipsum", "dolor", "sit", "amet", "0123456789", "x"]
rng = random.Random(4)
buf, total = [], 0
with open(path, "w", newline="") as f:
    while total < size:
        n = rng.randint(0, 16)
        sep = "  " if rng.random() < 0.05 else " "
        line = sep.join(rng.choice(words) for _ in range(n))
        line += "\r\n" if rng.random() < 0.1 else "\n"
        buf.append(line)
        total += len(line)
        if len(buf) >= 4096:
            f.write("".join(buf))
            buf = []
    f.write("".join(buf))
