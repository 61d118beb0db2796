// Node.js: N sequential awaits of already-resolved promises in one async function.
import { size, nowMs, report, check } from "./benchlib.mjs";
const n = size(1000000);

async function run(count) {
  let sum = 0;
  for (let i = 1; i <= count; i++) sum += await Promise.resolve(i);
  return sum;
}

const t0 = nowMs();
const sum = await run(n);
const elapsed = nowMs() - t0;
check(sum === (n * (n + 1)) / 2, "sum of awaited values");
report({ elapsed_ms: elapsed });
