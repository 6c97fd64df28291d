// Patch MicroPython's WebAssembly build so that its GC heap cannot grow.
//
// The webassembly port is built with MICROPY_GC_SPLIT_HEAP_AUTO: when an
// allocation fails it adds a new heap area, as large as the C function
// gc_get_max_new_split() allows; the stock build returns 128 MiB there. In
// py/gc.c, gc_try_add_heap() gives up when that value is smaller than the
// area needed, so a function that returns 0 makes a failed allocation a
// MemoryError, as on a board with a fixed heap.
//
// The .wasm has no name section, so the function is found by what it is: the
// one defined function of type () -> i32 whose whole body is
// `i32.const 134217728; end`. Its 5-byte LEB128 immediate is overwritten with
// a padded 5-byte encoding of 0, so no size field anywhere changes.

// gc_get_max_new_split() in the stock build returns this constant.
export const STOCK_MAX_NEW_SPLIT = 134217728;

// Read an unsigned LEB128 at pos; returns [value, next position].
function readUleb(buf, pos) {
    let result = 0;
    let shift = 0;
    for (;;) {
        if (pos >= buf.length) {
            throw new Error("wasm: truncated LEB128");
        }
        const byte = buf[pos++];
        result += (byte & 0x7f) * 2 ** shift;
        if ((byte & 0x80) === 0) {
            return [result, pos];
        }
        shift += 7;
        if (shift > 35) {
            throw new Error("wasm: LEB128 too long");
        }
    }
}

// Signed LEB128 encoding of a 32-bit integer, shortest form.
function encodeSleb(value) {
    const out = [];
    for (;;) {
        const byte = value & 0x7f;
        value >>= 7;
        const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
        out.push(done ? byte : byte | 0x80);
        if (done) {
            return out;
        }
    }
}

function skipName(buf, pos) {
    const [len, p] = readUleb(buf, pos);
    return p + len;
}

function skipLimits(buf, pos) {
    const flags = buf[pos++];
    let p = readUleb(buf, pos)[1];
    if (flags & 1) {
        p = readUleb(buf, p)[1];
    }
    return p;
}

// Find every defined function of type () -> i32 whose whole body is
// `i32.const <constant>; end` (no locals). Returns the byte offsets of their
// i32.const immediates, with the immediate's length.
export function findConstantFunctions(wasm, constant) {
    if (wasm.readUInt32LE(0) !== 0x6d736100 || wasm.readUInt32LE(4) !== 1) {
        throw new Error("not a WebAssembly 1.0 binary");
    }
    const imm = encodeSleb(constant);
    const wanted = Buffer.from([0x00, 0x41, ...imm, 0x0b]); // 0 locals, i32.const, end
    const types = []; // [nparams, results[]]
    let importedFuncs = 0;
    let funcTypes = [];
    const hits = [];
    let pos = 8;
    while (pos < wasm.length) {
        const id = wasm[pos];
        const [size, start] = readUleb(wasm, pos + 1);
        const end = start + size;
        let p = start;
        if (id === 1) { // type section
            let count;
            [count, p] = readUleb(wasm, p);
            for (let i = 0; i < count; i++) {
                if (wasm[p++] !== 0x60) {
                    throw new Error("wasm: unexpected type form");
                }
                let n;
                [n, p] = readUleb(wasm, p);
                const nparams = n;
                p += n; // value types are one byte each
                [n, p] = readUleb(wasm, p);
                types.push([nparams, Array.from(wasm.subarray(p, p + n))]);
                p += n;
            }
        } else if (id === 2) { // import section
            let count;
            [count, p] = readUleb(wasm, p);
            for (let i = 0; i < count; i++) {
                p = skipName(wasm, p);
                p = skipName(wasm, p);
                const kind = wasm[p++];
                if (kind === 0) { // function
                    p = readUleb(wasm, p)[1];
                    importedFuncs++;
                } else if (kind === 1) { // table
                    p = skipLimits(wasm, p + 1);
                } else if (kind === 2) { // memory
                    p = skipLimits(wasm, p);
                } else if (kind === 3) { // global
                    p += 2;
                } else if (kind === 4) { // tag
                    p = readUleb(wasm, p + 1)[1];
                } else {
                    throw new Error(`wasm: unknown import kind ${kind}`);
                }
            }
        } else if (id === 3) { // function section
            let count;
            [count, p] = readUleb(wasm, p);
            funcTypes = [];
            for (let i = 0; i < count; i++) {
                let t;
                [t, p] = readUleb(wasm, p);
                funcTypes.push(t);
            }
        } else if (id === 10) { // code section
            let count;
            [count, p] = readUleb(wasm, p);
            for (let i = 0; i < count; i++) {
                let bodySize;
                [bodySize, p] = readUleb(wasm, p);
                if (bodySize === wanted.length && wasm.subarray(p, p + bodySize).equals(wanted)) {
                    const type = types[funcTypes[i]];
                    if (type && type[0] === 0 && type[1].length === 1 && type[1][0] === 0x7f) {
                        hits.push({ funcIndex: importedFuncs + i, offset: p + 2, length: imm.length });
                    }
                }
                p += bodySize;
            }
        }
        pos = end;
    }
    return hits;
}

// Return the stock wasm with gc_get_max_new_split() returning 0.
export function capWasm(stock) {
    const hits = findConstantFunctions(stock, STOCK_MAX_NEW_SPLIT);
    if (hits.length !== 1) {
        throw new Error(`expected one function returning ${STOCK_MAX_NEW_SPLIT} ` +
            `(gc_get_max_new_split) in micropython.wasm, found ${hits.length}; ` +
            "has the npm package changed?");
    }
    const patched = Buffer.from(stock);
    const { offset, length } = hits[0];
    // Zero in a padded LEB128 of the same length, so no size field changes.
    for (let i = 0; i < length; i++) {
        patched[offset + i] = i === length - 1 ? 0x00 : 0x80;
    }
    if (!WebAssembly.validate(patched)) {
        throw new Error("patched micropython.wasm does not validate");
    }
    return patched;
}
