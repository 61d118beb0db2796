// Node.js: a chain of N .then steps on a resolved promise, then await its end.
import { size, nowMs, report, check } from "./benchlib.mjs";
const n = size(1000000);

const t0 = nowMs();
let p = Promise.resolve(0);
for (let i = 0; i < n; i++) p = p.then((v) => v + 1);
const v = await p;
const elapsed = nowMs() - t0;
check(v === n, "value at the end of the chain");
report({ elapsed_ms: elapsed });
