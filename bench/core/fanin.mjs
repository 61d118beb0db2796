// Node.js: 8 producers send N/8 values each into one queue of capacity 1024;
// one consumer drains it until the last producer closes it.
import { size, nowMs, report, check, Chan } from "./benchlib.mjs";
const n = size(1000000);
const producers = 8;
const per = Math.floor(n / producers);

const ch = new Chan(1024);
let running = producers;

async function producer() {
  for (let i = 1; i <= per; i++) await ch.send(i);
  if (--running === 0) ch.close();
}

const t0 = nowMs();
for (let p = 0; p < producers; p++) producer();
let sum = 0, count = 0;
for (;;) {
  const { value, ok } = await ch.recv();
  if (!ok) break;
  sum += value;
  count++;
}
const elapsed = nowMs() - t0;
check(count === per * producers, "number of values received");
check(sum === (producers * per * (per + 1)) / 2, "sum of values received");
report({ elapsed_ms: elapsed });
