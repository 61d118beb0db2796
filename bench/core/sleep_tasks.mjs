// Node.js: N setTimeout promises of 10 ms each, joined with Promise.all.
import { size, nowMs, report, check, rssKb } from "./benchlib.mjs";
const n = size(100000);

let finished = 0;
const t0 = nowMs();
const tasks = new Array(n);
for (let i = 0; i < n; i++) {
  tasks[i] = new Promise((resolve) => setTimeout(() => { finished++; resolve(); }, 10));
}
await Promise.all(tasks);
const elapsed = nowMs() - t0;
check(finished === n, "every task finished");
report({ elapsed_ms: elapsed, rss_kb: rssKb() });
