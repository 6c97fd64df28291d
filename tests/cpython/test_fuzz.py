# The coverage-guided fuzz targets (tools/fuzz.py, issue 18 item 2) in the
# test suite: every committed corpus input passes every invariant of its
# target, each target runs a few hundred atheris inputs, and the corpora
# replayed through the portable core under MicroPython give every answer
# byte for byte as under CPython (tools/fuzz_differential.py).

import os
import subprocess
import sys

import pytest
from tool_module import REPO, tool_module

fuzz = tool_module("fuzz")

TARGETS = sorted(fuzz.TARGETS)


def test_every_parser_has_a_target_with_a_committed_corpus():
    assert set(TARGETS) >= {"axdr", "hdlc", "wrapper", "iec21", "acse", "xdlms", "ciphered", "gbt", "sources",
                            "meterdef", "gurux_xml", "decode", "channel", "x509", "gcipher"}
    size = 0
    for t in TARGETS:
        files = fuzz.corpus_files(t)
        assert files, t
        size += sum(os.path.getsize(p) for p in files)
    assert size < 600 * 1024  # minimized: a few hundred KB in all


@pytest.mark.parametrize("target", TARGETS)
def test_the_committed_corpus_keeps_every_invariant(target):
    assert fuzz.replay([target]) > 0


@pytest.mark.parametrize("target", TARGETS)
def test_the_target_runs_under_atheris(target):
    pytest.importorskip("atheris")
    cmd = [sys.executable, os.path.join(REPO, "tools", "fuzz.py"), "run", target, "-n", "40", "-s", "20",
           "--committed-only", "--", "-seed=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "stat::number_of_executed_units" in proc.stderr, proc.stderr[-2000:]


def test_micropython_answers_every_corpus_input_as_cpython_does():
    py = [sys.executable, os.path.join(REPO, "tools", "fuzz_differential.py")]
    prep = subprocess.run(py + ["--prepare"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert prep.returncode == 0, prep.stdout + prep.stderr
    cp = subprocess.run(py, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert cp.returncode == 0, cp.stderr[-3000:]
    # --no-cap: the WebAssembly build collects no garbage inside one script
    runner = ["node", os.path.join(REPO, "tools", "micropython", "runner.mjs"), "--no-cap", "--heap", "8192k"]
    mp = subprocess.run(runner + ["--package", os.path.join(REPO, "dlms_micro"), "--package",
                                  os.path.join(REPO, "build", "fuzz", "pkg"), "--script",
                                  os.path.join(REPO, "tools", "fuzz_differential.py")],
                        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert mp.returncode == 0, mp.stdout[-3000:] + mp.stderr[-3000:]
    a = cp.stdout.splitlines()
    b = mp.stdout.splitlines()
    assert len(a) >= 20 and len([x for x in a if x.startswith("channel ")]) >= 10
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    assert len(a) == len(b) and not diff, diff[:10]
