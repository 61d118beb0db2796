// Node.js: counts the lines of a file with readline. usage: node lines_count.mjs PATH
import fs from "node:fs";
import readline from "node:readline";

const t0 = process.hrtime.bigint();
let n = 0;
const rl = readline.createInterface({ input: fs.createReadStream(process.argv[2]), crlfDelay: Infinity });
for await (const _ of rl) n++;
console.log(`lines=${n}`);
console.log(`elapsed_ms=${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)}`);
