# Energy registers across power cuts on a board (ports/micropython/
# dlms_micro_mp/powerfail.py): a changed energy reaches the flash within the
# storage's interval; a supply drop seen on the monitor pin writes it at
# once. Runs under pytest and real MicroPython.

import sys

import mp_machine

mp_machine.install()

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

from dlms_micro_mp import powerfail  # noqa: E402
from dlms_micro_mp.storage import FlashStorage  # noqa: E402


class _Meter:
    def __init__(self):
        self.state = [0, 0, 0]


def _store(name):
    import os

    d = ("/tmp" if sys.implementation.name != "micropython" else "") + "/dlms_mp_pf_" + name
    try:
        for f in os.listdir(d):
            os.remove(d + "/" + f)
    except OSError:
        pass
    return FlashStorage(d, min_interval_ms=60000)


def _stored(store):
    # what a board booting after a cut reads: a new storage on the directory
    b = FlashStorage(store.directory).get(powerfail.KEY)
    return None if b is None else (int.from_bytes(b[0:4], "big"), int.from_bytes(b[4:8], "big"))


class _Pin:
    # the supply monitor's machine.Pin
    IN = 0
    PULL_UP = 2
    PULL_DOWN = 1
    made = []  # every pin made, in order
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, pin, mode=-1, pull=-1):
        self.pin = pin
        self.pull = pull
        self.level = 1
        self.handler = None
        _Pin.made.append(self)

    def value(self):
        return self.level

    def irq(self, trigger=0, handler=None):
        self.trigger = trigger
        self.handler = handler


def test_without_a_supply_monitor_energy_reaches_flash_within_the_interval():
    store = _store("interval")
    m = _Meter()
    saver = powerfail.attach({}, m, store, (1, 2))
    m.state[1] = 100
    saver(0)  # the first write of an interval goes at once
    assert _stored(store) == (100, 0)
    m.state[1] = 1500
    m.state[2] = 7
    saver(1000)
    # a cut now loses what the interval has not written yet: never more, and
    # the stored value is never ahead of what was counted
    assert _stored(store) == (100, 0)
    saver(59999)
    assert _stored(store) == (100, 0)
    saver(60000)  # min_interval_ms after the last write
    assert _stored(store) == (1500, 7)


def test_a_supply_drop_on_the_monitor_pin_writes_the_energy_at_once():
    store = _store("drop")
    m = _Meter()
    _Pin.made = []
    saver = powerfail.attach({"power_fail": {"pin": 34, "level": 0, "pull": "up"}}, m, store, (1, 2),
                             pin_factory=_Pin)
    pin = _Pin.made[0]
    assert pin.pin == 34 and pin.pull == 2 and pin.trigger == _Pin.IRQ_FALLING
    m.state[1] = 1
    saver(0)  # written: the interval starts
    assert _stored(store) == (1, 0)
    m.state[1] = 123456
    saver(100)
    assert _stored(store) != (123456, 0)  # lazily kept in RAM
    pin.handler(pin)  # the edge: only a flag in the interrupt
    assert _stored(store) != (123456, 0)
    saver(105)  # the next loop step writes it
    assert _stored(store) == (123456, 0) and saver.saves == 1
    # the level is read too: a missed edge still saves, once per drop
    pin.level = 0
    m.state[1] = 123460
    saver(110)
    assert saver.saves == 1  # the same drop
    pin.level = 1
    saver(120)  # the supply is back
    pin.level = 0
    saver(130)
    assert _stored(store) == (123460, 0) and saver.saves == 2


def test_no_storage_or_no_energy_register_adds_nothing():
    inner = object()
    assert powerfail.attach({}, _Meter(), None, (1, 2), inner) is inner
    assert powerfail.attach({}, _Meter(), _store("none"), (-1, -1), inner) is inner


def test_a_loop_step_with_unchanged_energy_allocates_nothing():
    import gc

    store = _store("alloc")
    m = _Meter()
    m.state[1] = 5
    saver = powerfail.attach({}, m, store, (1, 2))
    saver(0)
    saver(1)
    if sys.implementation.name != "micropython":
        return  # the heap figure is MicroPython's
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for t in range(2, 12):
        saver(t)
    used = gc.mem_alloc() - a
    gc.enable()
    assert used == 0, used
