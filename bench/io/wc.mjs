// Node.js peer: the same count with readline over a file stream (or stdin).
// usage: node bench/io/wc.mjs PATH [fs|stdin] [words|lines]
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";

const [path, source = "fs", what = "words"] = process.argv.slice(2);
const t0 = process.hrtime.bigint();
const input = source === "stdin" ? process.stdin : createReadStream(path);
const rl = createInterface({ input, crlfDelay: Infinity });
let lines = 0;
let words = 0;
const re = /\S+/g;
for await (const line of rl) {
  lines++;
  if (what === "words") {
    const m = line.match(re);
    if (m) words += m.length;
  }
}
const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(`lines=${lines}`);
console.log(`words=${words}`);
console.log(`elapsed_ms=${elapsed.toFixed(1)}`);
