// Chapter 2's Monte Carlo π on Node's V8, two ways: the same hand-written .wasm module the
// other WebAssembly runtimes run, and a JavaScript version of the same arithmetic.
//
//     node hits.mjs wasm FILE.wasm SEED SAMPLES REPEATS
//     node hits.mjs js SEED SAMPLES REPEATS
//
// Prints "version V", "sha256 HEX" (wasm only: the module it ran), then one line per repeat,
// "hits nanoseconds", timed by Node's own clock.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

// JavaScript numbers are doubles and its bit operators work on 32 bits, so the 64-bit state
// is kept as two 32-bit halves (BigInt would be exact too, but allocates at every step). The
// generator is a class: `next` is one function on its prototype, so V8's optimised `hits` keeps
// calling (and inlining) the same one, and nothing is allocated per number. (A closure made
// afresh in each call of `hits`, returning the product's halves in a new array, made each call
// a new call target: V8 threw its optimised code away at the next call, and the job's speed
// depended on how it was cut into calls; see docs/performance.md.)
class Xorshift64Star {
  constructor(seed) {
    const start = (BigInt(seed) * 0x9e3779b97f4a7c15n) | 1n;
    this.hi = Number((start >> 32n) & 0xffffffffn) >>> 0;
    this.lo = Number(start & 0xffffffffn) >>> 0;
  }

  // The next number in [0, 1): s ^= s >> 12; s ^= s << 25; s ^= s >> 27; then
  // ((s * 0x2545F4914F6CDD1D) >> 11) / 2^53, as in the Rust.
  next() {
    let hi = this.hi;
    let lo = this.lo;
    // Each line one shift-and-xor; the old halves are on the right.
    lo = (lo ^ ((lo >>> 12) | (hi << 20))) >>> 0; hi = (hi ^ (hi >>> 12)) >>> 0;
    hi = (hi ^ ((hi << 25) | (lo >>> 7))) >>> 0; lo = (lo ^ (lo << 25)) >>> 0;
    lo = (lo ^ ((lo >>> 27) | (hi << 5))) >>> 0; hi = (hi ^ (hi >>> 27)) >>> 0;
    this.hi = hi;
    this.lo = lo;
    // The low 64 bits of s * 0x2545F4914F6CDD1D: lo * 0x4F6CDD1D in full from 16-bit pieces
    // (each product fits a double exactly), the cross terms only for the high half.
    const a0 = lo & 0xffff, a1 = lo >>> 16, b0 = 0xdd1d, b1 = 0x4f6c;
    const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
    const mLo = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
    const carry = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
    const mHi = (carry + Math.imul(lo, 0x2545f491) + Math.imul(hi, 0x4f6cdd1d)) >>> 0;
    // (m >> 11) as a double: mHi * 2^21 + (mLo >>> 11) is below 2^53, so exact.
    return (mHi * 2097152 + (mLo >>> 11)) / 9007199254740992;
  }
}

function hits(seed, samples) {
  const random = new Xorshift64Star(seed);
  let inside = 0;
  for (let i = 0; i < samples; i++) {
    const x = random.next(), y = random.next();
    if (x * x + y * y <= 1.0) inside++;
  }
  return inside;
}

function main() {
  const [how, ...rest] = process.argv.slice(2);
  console.log(`version Node ${process.version} (V8 ${process.versions.v8})`);
  let run;
  let args;
  if (how === "wasm") {
    const bytes = readFileSync(rest[0]);
    console.log("sha256 " + createHash("sha256").update(bytes).digest("hex"));
    const imports = { host: { line: () => {} } };
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
    run = (seed, samples) => instance.exports.hits(BigInt(seed), BigInt(samples));
    args = rest.slice(1);
  } else {
    run = hits;
    args = rest;
  }
  const [seed, samples, repeats] = args.map(Number);
  for (let r = 0; r < repeats; r++) {
    const started = process.hrtime.bigint();
    const found = run(seed, samples);
    const ns = process.hrtime.bigint() - started;
    console.log(`${found} ${ns}`);
  }
}

main();
