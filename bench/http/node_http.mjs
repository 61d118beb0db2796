// Node peer for bench/http: N GETs of URL at concurrency C with node:http and a keep-alive Agent.
//   node bench/http/node_http.mjs URL N C [--ttfb]
// Prints the same key=value lines as floor.c; exits 1 if any request failed or was not a 200.
import http from "node:http";
import { report } from "./node_common.mjs";

const [url, n, c, ...flags] = process.argv.slice(2);
const total = Number(n);
const conc = Math.min(Number(c), total);
const ttfbMode = flags.includes("--ttfb");
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const ttfb = [];
let started = 0, done = 0, errors = 0, bytes = 0;

function get() {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let first = true;
    const req = http.get(url, { agent }, (res) => {
      res.on("data", (chunk) => {
        if (first) {
          first = false;
          if (ttfbMode) ttfb.push(Number(process.hrtime.bigint() - t0) / 1e3);
        }
        bytes += chunk.length;
      });
      res.on("end", () => resolve(res.statusCode));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

async function worker() {
  while (started < total) {
    started++;
    try {
      if ((await get()) !== 200) errors++;
    } catch (e) {
      if (errors++ < 5) console.error("node_http:", e.message);
    }
    done++;
  }
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: conc }, worker));
report({ done, conc, elapsedMs: performance.now() - t0, cpu: process.cpuUsage(cpu0), bytes, errors, ttfb });
agent.destroy();
process.exitCode = errors || done !== total ? 1 : 0;
