# The battery boards' power manager as board.build wires it (ports/
# micropython/dlms_micro_mp/power.py, "sleep": "light"), on an S0 retrofit
# board whose loop also holds the S0 pin's port. Runs under pytest and real
# MicroPython.

import sys

import mp_machine

mp_machine.install()

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

import s0_retrofit_meter  # noqa: E402
from dlms_micro_mp import board, power  # noqa: E402
from dlms_micro_mp.loop import Log  # noqa: E402


# Built once, as a board builds it at boot (the build's garbage is collected
# before the test runs: the MicroPython runner's heap holds one test's
# allocations at a time).
CFG = {"name": "s0 sleep test", "hdlc": {"max_apdu": 256}, "sleep": "light", "idle_ms": 20,
       "channels": [{"name": "ir", "kind": "ir", "uart": 1, "tx": 21, "rx": 20, "baud": 9600}],
       "sources": {"s0": {"pin": 5}}}
LINES = []
CLOCK = mp_machine.CLOCK
APP = board.build(CFG, log=Log(LINES.append), sleep_us=CLOCK.sleep_us, wall_clock=lambda: 800000000,
                  definition=s0_retrofit_meter)


def test_power_on_a_built_s0_board_sleeps_idle_ms_past_its_source_port():
    # board.build wires it for "sleep": "light"; the S0 pin's port in the
    # loop (no channel) is passed over, the sleep is the board's idle_ms
    app = APP
    clock = CLOCK
    app.loop.ticks_ms = clock.ticks_ms
    pm = app.loop.idle
    assert isinstance(pm, power.Power) and len(app.loop.ports) == 2
    pm.rx_pin.level = 1  # the optical head's line idle
    before, t = mp_machine.SLEEPS[0], clock.ticks_ms()
    app.loop.step(t)
    pm(app.loop, t)
    assert mp_machine.SLEEPS[0] == before + 1 and pm.slept_ms == 20 and pm.why == "max"
    assert pm.wakes_on_line == 0  # the line read idle after it
    assert [x for x in LINES if x.startswith("power: light sleep")]
