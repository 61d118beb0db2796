// Shared helpers for the Node.js benchmark programs.
import { readFileSync } from "node:fs";

export function size(def) {
  const v = Number(process.argv[2]);
  return Number.isFinite(v) && v > 0 ? v : def;
}

export const nowMs = () => performance.now();

// Current resident set size in kB, read the same way as the Lua and Go programs.
export function rssKb() {
  const m = /VmRSS:\s*(\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : 0;
}

export function report(fields) {
  for (const k of Object.keys(fields).sort()) {
    const v = fields[k];
    console.log(`${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`);
  }
}

export function check(ok, what) {
  if (!ok) {
    console.error(`check failed: ${what}`);
    process.exit(3);
  }
}

// Force a full collection when node runs with --expose-gc.
export function fullGc() {
  if (typeof globalThis.gc === "function") globalThis.gc();
}

// A minimal async queue with Go channel semantics: capacity 0 is a rendezvous.
// recv() and send() return a plain value when they complete at once and a
// Promise when they have to wait; callers always `await` the result.
class Deque {
  constructor() { this.items = []; this.head = 0; }
  get length() { return this.items.length - this.head; }
  push(v) { this.items.push(v); }
  shift() {
    const v = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}

export class Chan {
  constructor(cap = 0) {
    this.cap = cap;
    this.buf = new Deque();
    this.recvq = new Deque(); // resolve functions of waiting receivers
    this.sendq = new Deque(); // {value, resolve} of waiting senders
    this.closed = false;
  }

  send(value) {
    if (this.closed) throw new Error("send on closed channel");
    if (this.recvq.length > 0) {
      this.recvq.shift()({ value, ok: true });
      return undefined;
    }
    if (this.buf.length < this.cap) {
      this.buf.push(value);
      return undefined;
    }
    return new Promise((resolve) => this.sendq.push({ value, resolve }));
  }

  // Resolves to {value, ok}; ok is false once closed and drained.
  recv() {
    if (this.buf.length > 0) {
      const value = this.buf.shift();
      if (this.sendq.length > 0) {
        const s = this.sendq.shift();
        this.buf.push(s.value);
        s.resolve();
      }
      return { value, ok: true };
    }
    if (this.sendq.length > 0) {
      const s = this.sendq.shift();
      s.resolve();
      return { value: s.value, ok: true };
    }
    if (this.closed) return { value: undefined, ok: false };
    return new Promise((resolve) => this.recvq.push(resolve));
  }

  close() {
    this.closed = true;
    while (this.recvq.length > 0) this.recvq.shift()({ value: undefined, ok: false });
  }
}
