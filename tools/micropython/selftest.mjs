#!/usr/bin/env node
// Self-test of the MicroPython runner: proves the heap cap, the test-mode
// contract (order, failures, hang recovery, frozen modules hidden,
// subpackages, closing line, exit status) and script mode, on a throwaway
// package and test directory made in the OS temp dir.
//
//   node tools/micropython/selftest.mjs [--mpy-cross PATH]
//
// Exits 0 when every check holds, 1 otherwise.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { capWasm, findConstantFunctions, STOCK_MAX_NEW_SPLIT } from "./wasmcap.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RUNNER = path.join(HERE, "runner.mjs");
const STOCK_WASM = path.join(HERE, "node_modules", "@micropython", "micropython-webassembly-pyscript",
    "micropython.wasm");

const extra = process.argv.slice(2);
let checks = 0;
const problems = [];

function check(what, ok, detail = "") {
    checks++;
    if (!ok) {
        problems.push(detail ? `${what}\n${detail}` : what);
    }
}

function write(root, rel, text) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text.replace(/^\n/, ""));
}

function runner(...args) {
    const r = spawnSync(process.execPath, [RUNNER, ...extra, ...args], { encoding: "utf8" });
    return { code: r.status, out: r.stdout, err: r.stderr, all: r.stdout + r.stderr };
}

// --- the patch itself ------------------------------------------------------
const stock = fs.readFileSync(STOCK_WASM);
const found = findConstantFunctions(stock, STOCK_MAX_NEW_SPLIT);
check("the stock wasm has exactly one () -> i32 function returning 128 MiB", found.length === 1,
    JSON.stringify(found));
const capped = capWasm(stock);
check("the patched wasm no longer has it", findConstantFunctions(capped, STOCK_MAX_NEW_SPLIT).length === 0);
const diff = [];
for (let i = 0; i < stock.length; i++) {
    if (stock[i] !== capped[i]) {
        diff.push(i);
    }
}
check("the patch changes only bytes inside that one immediate",
    capped.length === stock.length && diff.length > 0 &&
    diff.every((i) => i >= found[0].offset && i < found[0].offset + found[0].length), JSON.stringify(diff));

// --- a throwaway package with a subpackage, and tests ----------------------
const root = fs.mkdtempSync(path.join(os.tmpdir(), "mp-runner-selftest-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
write(root, "pkg/demo/__init__.py", "NAME = 'demo'\n");
write(root, "pkg/demo/link/__init__.py", "");
write(root, "pkg/demo/link/frames.py", `
def checksum(data):
    s = 0
    for b in data:
        s = (s + b) & 0xFF
    return s


def fail():
    raise ValueError("raised in a subpackage")
`);
write(root, "tests/support.py", "def unhex(s):\n    return bytes.fromhex(s)\n");
write(root, "tests/test_alpha.py", `
from support import unhex
from demo.link import frames


def test_zz_defined_first():
    print("ORDER zz")
    assert frames.checksum(unhex("0102")) == 3


def test_aa_defined_second():
    print("ORDER aa")


def test_fails_in_subpackage():
    print("captured before the failure")
    frames.fail()


def test_200k_under_100k_heap_is_memoryerror():
    try:
        bytearray(200 * 1024)
    except MemoryError:
        return
    raise AssertionError("200 KB fitted in the capped heap")


def test_60k_fits():
    assert len(bytearray(60 * 1024)) == 60 * 1024


def test_frozen_modules_hidden():
    for name in ("abc", "functools", "logging", "unittest"):
        try:
            __import__(name)
        except ImportError:
            continue
        raise AssertionError(name + " is importable")
`);
write(root, "tests/test_beta.py", `
def test_before_hang():
    pass


def test_hangs():
    while True:
        pass


def test_after_hang():
    assert 2 + 2 == 4
`);
write(root, "tests/test_gamma.py", "import no_such_module\n\n\ndef test_never_runs():\n    pass\n");
write(root, "scripts/alloc.py", `
import sys, gc, time
import jsclock
from demo.link import frames
t0 = jsclock.ticks_us()
gc.collect()
before = gc.mem_alloc()
data = bytearray(int(sys.argv[1]) * 1024)
print("allocated", len(data), gc.mem_alloc() - before >= len(data))
print("elapsed_us_ok", time.ticks_diff(jsclock.ticks_us(), t0) >= 0, jsclock.now() > 0)
sys.exit(int(sys.argv[2]))
`);
const pkg = ["--package", path.join(root, "pkg", "demo")];
const tests = ["--tests", path.join(root, "tests")];

// --- test mode -------------------------------------------------------------
let r = runner(...pkg, ...tests, "--timeout", "3", "-v");
const lines = r.out.trimEnd().split("\n");
check("test mode closes with the counts", lines[lines.length - 1] === "micropython: 7 passed, 3 failed",
    r.all);
check("test mode exits 1 when a test failed", r.code === 1, `exit ${r.code}`);
check("tests run in source order, not name order", r.out.indexOf("test_zz_defined_first") <
    r.out.indexOf("test_aa_defined_second") && r.out.indexOf("test_aa_defined_second") > 0, r.out);
check("a failure shows name, traceback through the subpackage, and captured output",
    /test_alpha::test_fails_in_subpackage[\s\S]*demo\/link\/frames\.py", line \d+, in fail[\s\S]*ValueError: raised in a subpackage[\s\S]*captured before the failure/.test(r.out),
    r.out);
check("200 KB under the 100 KB heap is a MemoryError; 60 KB fits",
    /PASS test_alpha::test_200k_under_100k_heap_is_memoryerror/.test(r.out) &&
    /PASS test_alpha::test_60k_fits/.test(r.out), r.out);
check("frozen micropython-lib modules are hidden", /PASS test_alpha::test_frozen_modules_hidden/.test(r.out),
    r.out);
check("a hanging test is killed, reported as timed out, and the module goes on",
    /FAIL test_beta::test_hangs/.test(r.out) && /test_beta::test_hangs ______\ntimed out/.test(r.out) &&
    /PASS test_beta::test_after_hang/.test(r.out), r.out);
check("an import error is one failure of the module", /test_gamma::\(import\)[\s\S]*no_such_module/.test(r.out),
    r.out);

r = runner(...pkg, ...tests, "--no-cap", "-k", "200k");
check("without the cap, 200 KB fits (so the patch is what enforces it)",
    /AssertionError: 200 KB fitted in the capped heap/.test(r.out) && r.code === 1, r.all);

r = runner(...pkg, ...tests, "-k", "defined");
check("-k selects tests; all passing exits 0",
    r.code === 0 && r.out.trimEnd().endsWith("micropython: 2 passed, 0 failed"), r.all);

r = runner(...pkg, ...tests, "-k", "no_test_has_this_name");
check("no test run is a failure", r.code === 1 && r.out.trimEnd().endsWith("micropython: 0 passed, 0 failed"),
    r.all);

// --- script mode -----------------------------------------------------------
const script = path.join(root, "scripts", "alloc.py");
r = runner(...pkg, "--script", script, "50", "5");
check("script mode: package importable, argv, jsclock, output, exit status",
    r.code === 5 && /allocated 51200 True/.test(r.out) && /elapsed_us_ok True True/.test(r.out), r.all);
r = runner(...pkg, "--script", script, "200", "0");
check("script mode: 200 KB under the default heap is a MemoryError",
    r.code === 1 && /MemoryError/.test(r.err), r.all);
r = runner(...pkg, "--heap", "400k", "--script", script, "200", "0");
check("script mode: --heap raises the cap", r.code === 0 && /allocated 204800 True/.test(r.out), r.all);
r = runner(...pkg, "--no-cap", "--script", script, "1024", "0");
check("script mode: --no-cap lets the heap grow", r.code === 0 && /allocated 1048576 True/.test(r.out), r.all);

if (problems.length) {
    for (const p of problems) {
        process.stdout.write(`FAILED: ${p}\n\n`);
    }
    process.stdout.write(`runner self-test: ${problems.length} of ${checks} checks FAILED\n`);
    process.exit(1);
}
process.stdout.write(`runner self-test: all ${checks} checks hold\n`);
