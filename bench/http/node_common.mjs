// Shared by node_http.mjs and node_fetch.mjs: prints floor.c's key=value lines.
export function report({ done, conc, elapsedMs, cpu, bytes, errors, ttfb }) {
  const s = elapsedMs / 1e3;
  const lines = [
    `requests=${done}`,
    `concurrency=${conc}`,
    `elapsed_ms=${elapsedMs.toFixed(1)}`,
    `req_per_s=${(done / s).toFixed(0)}`,
    `mb_per_s=${(bytes / s / 1e6).toFixed(1)}`,
    `cpu_us_per_req=${((cpu.user + cpu.system) / done).toFixed(1)}`,
    `errors=${errors}`,
  ];
  if (ttfb.length) {
    const sorted = [...ttfb].sort((a, b) => a - b);
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    lines.push(`ttfb_us_mean=${mean.toFixed(1)}`);
    lines.push(`ttfb_us_p50=${sorted[Math.floor(sorted.length / 2)].toFixed(1)}`);
    lines.push(`ttfb_us_p99=${sorted[Math.floor((sorted.length * 99) / 100)].toFixed(1)}`);
  }
  console.log(lines.join("\n"));
}
