;; Chapter 2's Monte Carlo π, written by hand in WebAssembly's text format: the same
;; xorshift64* arithmetic as `threads::scaling::monte_carlo_hits`, so every runtime that runs
;; this module counts the same hits for the same seed and sample count.
(module
  ;; The essay's loop: the host prints the line and pauses; the guest only asks for it.
  (import "host" "line" (func $line (param i32)))
  ;; One 64 KiB page: a read past its end traps, whatever the host's own memory holds.
  (memory (export "memory") 1)

  ;; How many of `samples` random points in the unit square fall inside the quarter circle.
  (func (export "hits") (param $seed i64) (param $samples i64) (result i64)
    (local $s i64) (local $hits i64) (local $x f64) (local $y f64)
    (local.set $s (i64.or (i64.mul (local.get $seed) (i64.const 0x9E3779B97F4A7C15)) (i64.const 1)))
    (block $done
      (loop $sample
        (br_if $done (i64.eqz (local.get $samples)))
        ;; x = the next xorshift64* number in [0, 1). Shifted right by 11 it is below 2^53, so
        ;; the signed conversion is exact, as in the Rust (LLVM emits a signed one) and the Java
        ;; (l2d). The unsigned one gives the same double, but wasmtime 48's Cranelift compiles it
        ;; to a sequence that waits on the previous sample's sum (docs/performance.md).
        (local.set $s (i64.xor (local.get $s) (i64.shr_u (local.get $s) (i64.const 12))))
        (local.set $s (i64.xor (local.get $s) (i64.shl (local.get $s) (i64.const 25))))
        (local.set $s (i64.xor (local.get $s) (i64.shr_u (local.get $s) (i64.const 27))))
        (local.set $x
          (f64.div
            (f64.convert_i64_s
              (i64.shr_u (i64.mul (local.get $s) (i64.const 0x2545F4914F6CDD1D)) (i64.const 11)))
            (f64.const 9007199254740992)))  ;; 2^53
        ;; y = the next xorshift64* number in [0, 1)
        (local.set $s (i64.xor (local.get $s) (i64.shr_u (local.get $s) (i64.const 12))))
        (local.set $s (i64.xor (local.get $s) (i64.shl (local.get $s) (i64.const 25))))
        (local.set $s (i64.xor (local.get $s) (i64.shr_u (local.get $s) (i64.const 27))))
        (local.set $y
          (f64.div
            (f64.convert_i64_s
              (i64.shr_u (i64.mul (local.get $s) (i64.const 0x2545F4914F6CDD1D)) (i64.const 11)))
            (f64.const 9007199254740992)))  ;; 2^53
        ;; inside the quarter circle: one more hit
        (local.set $hits
          (i64.add (local.get $hits)
            (i64.extend_i32_u
              (f64.le
                (f64.add (f64.mul (local.get $x) (local.get $x))
                         (f64.mul (local.get $y) (local.get $y)))
                (f64.const 1)))))
        (local.set $samples (i64.sub (local.get $samples) (i64.const 1)))
        (br $sample)))
    (local.get $hits))

  ;; One iteration of the essay's loop: ask the host for the line; when `$fault` is set, read
  ;; one byte past the end of linear memory, which traps.
  (func (export "iteration") (param $i i32) (param $fault i32)
    (call $line (local.get $i))
    (if (local.get $fault)
      (then (drop (i32.load8_u (i32.const 65536))))))

  ;; A runaway: loops for ever. Only the host can stop it (fuel, or epoch interruption).
  (func (export "spin")
    (loop $forever (br $forever))))
