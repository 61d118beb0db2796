"""Writes the line-counting input: about SIZE_MB MiB of text lines (0 to 14
words each, some empty), deterministic. Usage: make_input.py PATH [SIZE_MB]"""
import random
import sys

path = sys.argv[1]
size = int(float(sys.argv[2]) * 1024 * 1024) if len(sys.argv) > 2 else 100 * 1024 * 1024
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
         "kappa", "lambda", "mu", "lorem", "ipsum", "dolor", "sit", "amet"]
rng = random.Random(1)
total = 0
with open(path, "w") as f:
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(0, 14))) + "\n"
        f.write(line)
        total += len(line)
