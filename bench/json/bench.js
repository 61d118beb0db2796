// Node.js baseline for bench.lua: same protocol and output line, same clock
// (process CPU time, as os.clock gives Lua; it includes V8's helper threads).
//   node --expose-gc bench/json/bench.js FILE [RUNS]
const fs = require("fs");
const [path, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 7);
const text = fs.readFileSync(path, "utf8");
const median = (t) => {
  t.sort((a, b) => a - b);
  const n = t.length;
  return n % 2 ? t[(n - 1) / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
};
const ms = (t0) => {
  const u = process.cpuUsage(t0);
  return (u.user + u.system) / 1e3;
};
let dec = [], enc = [];
let value, out;
for (let i = 0; i < runs + 3; i++) {
  value = out = undefined;
  if (global.gc) global.gc();
  let t0 = process.cpuUsage();
  value = JSON.parse(text);
  dec.push(ms(t0));
  t0 = process.cpuUsage();
  out = JSON.stringify(value);
  enc.push(ms(t0));
}
const [firstDec, firstEnc] = [dec[0], enc[0]];
dec = dec.slice(3);
enc = enc.slice(3);
console.log(`decode_ms ${median(dec).toFixed(1)} encode_ms ${median(enc).toFixed(1)} ` +
            `first_decode_ms ${firstDec.toFixed(1)} first_encode_ms ${firstEnc.toFixed(1)} ` +
            `bytes ${Buffer.byteLength(text)} out_bytes ${Buffer.byteLength(out)}`);
