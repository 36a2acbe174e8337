;; Byte-stuffing for POP3 multi-line replies (RFC 1939 section 3), the hot loop of DotStuffing:
;; every bare LF becomes CRLF, and a line that starts with "." gets a second ".".
;;
;; stuff(in, len, out, flags) reads len bytes at in and writes the result at out; it returns the
;; number of bytes written (at most 2 * len + 1). flags: bit 0 = the first byte starts a line,
;; bit 1 = the byte before the first one was a CR. The caller leaves 16 spare bytes after the
;; output room: the 16-byte path may store past the end of what it keeps.
;;
;; Lines are scanned 16 bytes at a time (SIMD): a block with no LF is copied whole; otherwise its
;; bytes up to the first LF are, and the LF goes through the one-byte path. The first byte of a
;; line always takes the one-byte path, which handles the leading dot.
;;
;; Assembled by scripts/build-wasm.mjs into stuffing-wasm.ts (npm run build:wasm).
(module
  (memory (export "memory") 1)
  (func (export "stuff") (param $in i32) (param $len i32) (param $out i32) (param $flags i32) (result i32)
    (local $end i32) (local $start i32) (local $atLineStart i32) (local $prevCR i32)
    (local $byte i32) (local $block v128) (local $lfMask i32) (local $k i32)
    (local.set $end (i32.add (local.get $in) (local.get $len)))
    (local.set $start (local.get $out))
    (local.set $atLineStart (i32.and (local.get $flags) (i32.const 1)))
    (local.set $prevCR (i32.and (i32.shr_u (local.get $flags) (i32.const 1)) (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $in) (local.get $end)))
        ;; 16 bytes at once, inside a line.
        (if (i32.and
              (i32.le_u (i32.add (local.get $in) (i32.const 16)) (local.get $end))
              (i32.eqz (local.get $atLineStart)))
          (then
            (local.set $block (v128.load align=1 (local.get $in)))
            (local.set $lfMask (i8x16.bitmask (i8x16.eq (local.get $block) (i8x16.splat (i32.const 10)))))
            (v128.store align=1 (local.get $out) (local.get $block))
            (if (i32.eqz (local.get $lfMask))
              (then
                (local.set $prevCR (i32.eq (i32.load8_u offset=15 (local.get $in)) (i32.const 13)))
                (local.set $in (i32.add (local.get $in) (i32.const 16)))
                (local.set $out (i32.add (local.get $out) (i32.const 16)))
                (br $next)))
            ;; Keep the bytes before the first LF; the LF itself is handled below.
            (local.set $k (i32.ctz (local.get $lfMask)))
            (if (local.get $k)
              (then
                (local.set $prevCR
                  (i32.eq
                    (i32.load8_u (i32.sub (i32.add (local.get $in) (local.get $k)) (i32.const 1)))
                    (i32.const 13)))
                (local.set $in (i32.add (local.get $in) (local.get $k)))
                (local.set $out (i32.add (local.get $out) (local.get $k)))))))
        ;; One byte.
        (local.set $byte (i32.load8_u (local.get $in)))
        (if (i32.eq (local.get $byte) (i32.const 10))
          (then
            (if (i32.eqz (local.get $prevCR))
              (then
                (i32.store8 (local.get $out) (i32.const 13))
                (local.set $out (i32.add (local.get $out) (i32.const 1)))))
            (i32.store8 (local.get $out) (i32.const 10))
            (local.set $atLineStart (i32.const 1))
            (local.set $prevCR (i32.const 0)))
          (else
            (if (i32.and (local.get $atLineStart) (i32.eq (local.get $byte) (i32.const 46)))
              (then
                (i32.store8 (local.get $out) (i32.const 46))
                (local.set $out (i32.add (local.get $out) (i32.const 1)))))
            (i32.store8 (local.get $out) (local.get $byte))
            (local.set $atLineStart (i32.const 0))
            (local.set $prevCR (i32.eq (local.get $byte) (i32.const 13)))))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (local.set $in (i32.add (local.get $in) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $out) (local.get $start))))
