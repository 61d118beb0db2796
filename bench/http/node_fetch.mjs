// Node peer for bench/http: N GETs of URL at concurrency C with the global fetch (undici, keep-alive pool).
//   node bench/http/node_fetch.mjs URL N C [--ttfb]
// Prints the same key=value lines as floor.c; exits 1 if any request failed or was not a 200.
import { report } from "./node_common.mjs";

const [url, n, c, ...flags] = process.argv.slice(2);
const total = Number(n);
const conc = Math.min(Number(c), total);
const ttfbMode = flags.includes("--ttfb");
const ttfb = [];
let started = 0, done = 0, errors = 0, bytes = 0;

async function get() {
  const t0 = process.hrtime.bigint();
  const res = await fetch(url);
  let first = true;
  for await (const chunk of res.body) {
    if (first) {
      first = false;
      if (ttfbMode) ttfb.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    bytes += chunk.length;
  }
  return res.status;
}

async function worker() {
  while (started < total) {
    started++;
    try {
      if ((await get()) !== 200) errors++;
    } catch (e) {
      if (errors++ < 5) console.error("node_fetch:", e.message);
    }
    done++;
  }
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: conc }, worker));
report({ done, conc, elapsedMs: performance.now() - t0, cpu: process.cpuUsage(cpu0), bytes, errors, ttfb });
process.exitCode = errors || done !== total ? 1 : 0;
