# The README's examples run: the gurux-dlms and dlms-cosem scripts
# (docs/examples/read_with_*.py, shown whole in the README) read a served
# demo meter twice each (their invocation counters carried in a file from
# run to run), and the README shows exactly those files.

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
EXAMPLES = ("read_with_gurux.py", "read_with_dlms_cosem.py")


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    svc = ThreadedService(DemoMeter(storage=FileStorage(str(tmp_path_factory.mktemp("readme-meter"))), seed=2,
                                    history=1), host="127.0.0.1", wrapper_port=0, hdlc_port=0)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.mark.parametrize("script", EXAMPLES)
def test_the_example_reads_the_demo_meter_twice(served, script, tmp_path):
    path = os.path.join(ROOT, "docs", "examples", script)
    port = str(served.wrapper_address[1])
    for run in (1, 2):
        p = subprocess.run([sys.executable, path, port], cwd=str(tmp_path), capture_output=True, text=True,
                           timeout=50)
        assert p.returncode == 0, (run, p.stdout, p.stderr)
        assert re.search(r"meter's invocation counter: \d+", p.stdout), p.stdout
        # scaler 0 (gurux gives it as the factor 1.0), unit 30 = Wh
        assert re.search(r"active energy import: \d+ \((scaler 0|times 1\.0), unit 30\)", p.stdout), p.stdout
        assert "load profile rows of the last day: 9" in p.stdout, p.stdout  # 96 (95 or 97 at a boundary)


@pytest.mark.parametrize("script", EXAMPLES)
def test_the_readme_shows_the_example_as_it_is(script):
    with open(os.path.join(ROOT, "docs", "examples", script), encoding="utf-8") as f:
        code = f.read()
    assert "```python\n" + code + "```" in readme(), script
