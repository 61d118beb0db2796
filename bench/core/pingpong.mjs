// Node.js: N round trips between two async functions over two unbuffered queues.
import { size, nowMs, report, check, Chan } from "./benchlib.mjs";
const n = size(1000000);

const ping = new Chan(0), pong = new Chan(0);

async function ponger() {
  for (let i = 0; i < n; i++) {
    const { value } = await ping.recv();
    await pong.send(value + 1);
  }
}

async function pinger() {
  let sum = 0;
  for (let i = 1; i <= n; i++) {
    await ping.send(i);
    sum += (await pong.recv()).value;
  }
  return sum;
}

const t0 = nowMs();
const done = ponger();
const sum = await pinger();
await done;
const elapsed = nowMs() - t0;
check(sum === (n * (n + 1)) / 2 + n, "sum of pongs");
report({ elapsed_ms: elapsed });
