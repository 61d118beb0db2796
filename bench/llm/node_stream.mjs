// Node.js peer of bench/llm/floor.c: N concurrent OpenAI streaming completions
// with the built-in fetch (undici), an incremental SSE parser, JSON.parse per
// event. Same output keys as floor.c.
//
//   node bench/llm/node_stream.mjs --port P [--streams 1000] [--tokens 200]

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (i % 2 ? acc : [...acc, [v.replace(/^--/, ''), a[i + 1]]]), []));
const port = Number(args.port);
const streams = Number(args.streams ?? 1000);
const wantTokens = Number(args.tokens ?? 200);
if (!port) {
  console.error('usage: node_stream.mjs --port P [--streams N] [--tokens N]');
  process.exit(2);
}
const url = `http://127.0.0.1:${port}/v1/chat/completions`;
const body = JSON.stringify({
  model: 'bench', stream: true, messages: [{ role: 'user', content: `tokens=${wantTokens}` }],
});

// Incremental SSE: lines end with LF (a CR before it is dropped); data lines are
// joined with "\n"; a blank line dispatches. Other fields are ignored here.
class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.rest = '';
    this.data = [];
  }
  feed(text) {
    const buf = this.rest + text;
    let start = 0;
    let nl;
    while ((nl = buf.indexOf('\n', start)) !== -1) {
      let end = nl;
      if (end > start && buf.charCodeAt(end - 1) === 13) end--;
      this.line(buf.slice(start, end));
      start = nl + 1;
    }
    this.rest = buf.slice(start);
  }
  line(l) {
    if (l === '') {
      if (this.data.length) this.onEvent(this.data.join('\n'));
      this.data = [];
    } else if (l.startsWith('data:')) {
      this.data.push(l.charCodeAt(5) === 32 ? l.slice(6) : l.slice(5));
    }
  }
}

async function one(t0) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
    body,
  });
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  let tokens = 0;
  let done = false;
  let ttft = -1;
  const parser = new SseParser((data) => {
    if (data === '[DONE]') {
      done = true;
      return;
    }
    const content = JSON.parse(data).choices?.[0]?.delta?.content;
    if (content) {
      if (tokens++ === 0) ttft = performance.now() - t0;
    }
  });
  const decoder = new TextDecoder();
  for await (const chunk of res.body) parser.feed(decoder.decode(chunk, { stream: true }));
  if (!done || tokens !== wantTokens) throw new Error(`${tokens} tokens, done=${done}`);
  return { tokens, ttft };
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const pending = Array.from({ length: streams }, () => one(t0));
const setup = performance.now() - t0;  // every fetch() called (undici sends from the event loop)
const results = await Promise.allSettled(pending);
const elapsed = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);

let total = 0;
let errors = 0;
const ttfts = [];
for (const r of results) {
  if (r.status === 'fulfilled') {
    total += r.value.tokens;
    ttfts.push(r.value.ttft);
  } else if (errors++ < 5) {
    console.error('node_stream: stream failed:', r.reason?.message ?? r.reason);
  }
}
ttfts.sort((a, b) => a - b);
const pick = (q) => (ttfts.length ? ttfts[Math.min(ttfts.length - 1, Math.floor(ttfts.length * q))] : -1);
console.log(`streams=${streams}`);
console.log(`tokens=${total}`);
console.log(`elapsed_ms=${elapsed.toFixed(1)}`);
console.log(`tokens_per_s=${Math.round(total / (elapsed / 1000))}`);
console.log(`setup_ms=${setup.toFixed(1)}`);
console.log(`ttft_median_ms=${pick(0.5).toFixed(1)}`);
console.log(`ttft_p99_ms=${pick(0.99).toFixed(1)}`);
console.log(`cpu_ms=${Math.round((cpu.user + cpu.system) / 1000)}`);
console.log(`errors=${errors}`);
process.exit(errors ? 1 : 0);
