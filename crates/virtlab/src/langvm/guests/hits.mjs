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
// is kept as two 32-bit halves (BigInt would be exact too, but allocates at every step).
function mulLow64(aHi, aLo, bHi, bLo) {
  // aLo * bLo in full, from 16-bit pieces (each product fits a double exactly).
  const a0 = aLo & 0xffff, a1 = aLo >>> 16, b0 = bLo & 0xffff, b1 = bLo >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const lo = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  const carry = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  const hi = (carry + Math.imul(aLo, bHi) + Math.imul(aHi, bLo)) >>> 0;
  return [hi, lo];
}

function hits(seed, samples) {
  const start = (BigInt(seed) * 0x9e3779b97f4a7c15n) | 1n;
  let hi = Number((start >> 32n) & 0xffffffffn) >>> 0;
  let lo = Number(start & 0xffffffffn) >>> 0;
  const next = () => {
    // s ^= s >> 12; s ^= s << 25; s ^= s >> 27 (old halves on the right of each line)
    lo = (lo ^ ((lo >>> 12) | (hi << 20))) >>> 0; hi = (hi ^ (hi >>> 12)) >>> 0;
    hi = (hi ^ ((hi << 25) | (lo >>> 7))) >>> 0; lo = (lo ^ (lo << 25)) >>> 0;
    lo = (lo ^ ((lo >>> 27) | (hi << 5))) >>> 0; hi = (hi ^ (hi >>> 27)) >>> 0;
    const [mHi, mLo] = mulLow64(hi, lo, 0x2545f491, 0x4f6cdd1d);
    // (m >> 11) as a double: mHi * 2^21 + (mLo >>> 11) is below 2^53, so exact.
    return (mHi * 2097152 + (mLo >>> 11)) / 9007199254740992;
  };
  let inside = 0;
  for (let i = 0; i < samples; i++) {
    const x = next(), y = next();
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
