// Node.js: memory of N async functions all blocked receiving on one queue,
// above the process's own baseline just before they start (run with --expose-gc).
import { size, nowMs, report, check, rssKb, fullGc, Chan } from "./benchlib.mjs";
const n = size(100000);

const ch = new Chan(0);
let woken = 0;
async function waiter() {
  const { ok } = await ch.recv();
  if (!ok) woken++;
}

fullGc();
const base = rssKb();
const t0 = nowMs();
const tasks = new Array(n);
for (let i = 0; i < n; i++) tasks[i] = waiter();
const elapsed = nowMs() - t0;
fullGc();
const rss = rssKb();

ch.close();
await Promise.all(tasks);
check(woken === n, "every blocked task woke on close");
report({
  elapsed_ms: elapsed,
  rss_kb: rss,
  base_rss_kb: base,
  per_task_bytes: Math.floor(((rss - base) * 1024) / n),
});
