"""make typecheck-board (tools/typecheck_board.py) catches board-API mistakes."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "typecheck_board.py")


def check(path):
    return subprocess.run([sys.executable, TOOL, str(path)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


def test_typecheck_board_rejects_a_wrong_uart_keyword(tmp_path):
    bad = tmp_path / "bad_uart.py"
    bad.write_text("from machine import UART\n"
                   "uart = UART(1, baud=9600)\n")
    proc = check(bad)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'bad_uart.py:2: error: Unexpected keyword argument "baud"' in proc.stdout


def test_typecheck_board_rejects_read_that_may_be_none(tmp_path):
    bad = tmp_path / "bad_read.py"
    bad.write_text("from machine import UART\n"
                   "uart = UART(1, baudrate=9600)\n"
                   "n: int = len(uart.read(4))\n")
    proc = check(bad)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "bad_read.py:3: error:" in proc.stdout


def test_typecheck_board_accepts_correct_board_code(tmp_path):
    good = tmp_path / "good_uart.py"
    good.write_text("from machine import UART, Pin\n"
                    "import time\n"
                    "de = Pin(4, Pin.OUT, value=0)\n"
                    "uart = UART(1, baudrate=9600, tx=17, rx=16, timeout=0)\n"
                    "t0 = time.ticks_ms()\n"
                    "data = uart.read(4)\n"
                    "if data is not None:\n"
                    "    uart.write(data)\n"
                    "print(time.ticks_diff(time.ticks_ms(), t0))\n")
    proc = check(good)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "clean against the ESP32 stubs" in proc.stdout
