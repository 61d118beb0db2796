// Node.js baseline for bench.lua: same output line.
//   node bench/json/bench.js FILE [RUNS]
const fs = require("fs");
const [path, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 7);
const text = fs.readFileSync(path, "utf8");
const median = (t) => {
  t.sort((a, b) => a - b);
  const n = t.length;
  return n % 2 ? t[(n - 1) / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
};
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const dec = [], enc = [];
let value, out;
for (let i = 0; i < runs; i++) {
  value = out = undefined;
  if (global.gc) global.gc();
  let t0 = process.hrtime.bigint();
  value = JSON.parse(text);
  dec.push(ms(t0));
  t0 = process.hrtime.bigint();
  out = JSON.stringify(value);
  enc.push(ms(t0));
}
console.log(`decode_ms ${median(dec).toFixed(1)} encode_ms ${median(enc).toFixed(1)} ` +
            `bytes ${Buffer.byteLength(text)} out_bytes ${Buffer.byteLength(out)}`);
