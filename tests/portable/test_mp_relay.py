# The supply relay a Disconnect control drives on a board
# (ports/micropython/dlms_micro_mp/relay.py): the output levels of a
# monostable and a latching relay, the pulse ended by the loop, the
# feedback check that reports a switch that did not happen, the reconnect
# button's debounce. Runs under pytest and real MicroPython.

import sys

import mp_machine

mp_machine.install()

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

from dlms_micro_mp import relay  # noqa: E402

Pin = mp_machine.Pin


class _Pins:
    # a Pin class that remembers the pins it made, by number
    def __init__(self):
        self.made = {}
        self.OUT = Pin.OUT
        self.IN = Pin.IN

    def __call__(self, n, mode=-1, pull=-1, value=None):
        p = Pin(n, mode, pull, value)
        self.made[n] = p
        return p


def _logged():
    lines = []
    return lines, lines.append


def test_monostable_holds_the_coil_at_the_closed_level():
    pins = _Pins()
    r = relay.Relay({"kind": "monostable", "pin": 25}, pins)
    r.set(True, 0)
    assert pins.made[25].level == 1
    r.set(False, 10)
    assert pins.made[25].level == 0
    low = relay.Relay({"kind": "monostable", "pin": 26, "active_low": True}, pins)
    low.set(True, 0)
    assert pins.made[26].level == 0
    low.set(False, 0)
    assert pins.made[26].level == 1


def test_latching_pulses_one_coil_and_the_loop_ends_the_pulse():
    pins = _Pins()
    r = relay.Relay({"kind": "latching", "close_pin": 32, "open_pin": 33, "pulse_ms": 80}, pins)
    assert pins.made[32].level == 0 and pins.made[33].level == 0  # both at rest before any order
    r.set(False, 1000)
    assert (pins.made[33].level, pins.made[32].level) == (1, 0)
    assert r.busy()
    r.service(1079)
    assert pins.made[33].level == 1
    r.service(1080)
    assert pins.made[33].level == 0 and not r.busy()
    # an order during a pulse ends that pulse first: never both coils on
    r.set(True, 2000)
    r.set(False, 2010)
    assert (pins.made[32].level, pins.made[33].level) == (0, 1)


def test_feedback_disagreeing_after_check_ms_is_a_failed_switch():
    pins = _Pins()
    lines, log = _logged()
    r = relay.Relay({"kind": "monostable", "pin": 25, "feedback": 34, "check_ms": 300}, pins, log)
    fb = pins.made[34]
    fb.level = 1  # the contacts follow
    r.set(True, 0)
    r.service(300)
    assert r.failures == 0 and not r.failed and lines == []
    r.set(False, 1000)  # contacts welded: the feedback stays closed
    r.service(1299)
    assert r.failures == 0  # not checked before check_ms
    r.service(1300)
    assert r.failed and r.failures == 1
    assert lines == ["relay 0: failed to open, feedback says closed"]
    fb.level = 0  # a later order that the contacts obey clears it
    r.set(False, 2000)
    r.service(2300)
    assert not r.failed and r.failures == 1
    assert lines[-1] == "relay 0: open, feedback agrees"


def test_feedback_active_low_and_no_feedback():
    pins = _Pins()
    r = relay.Relay({"kind": "monostable", "pin": 25, "feedback": 34, "feedback_active_low": True}, pins)
    pins.made[34].level = 0  # active low: closed
    assert r.sensed() is True
    bare = relay.Relay({"kind": "monostable", "pin": 27}, pins)
    bare.set(False, 0)
    bare.service(10000)
    assert bare.sensed() is None and bare.failures == 0 and not bare.busy()


def test_button_held_for_the_debounce_time_is_one_press():
    pins = _Pins()
    r = relay.Relay({"kind": "monostable", "pin": 25, "button": 35, "button_active_low": True}, pins)
    b = pins.made[35]
    b.level = 1  # released (pulled up)
    r.service(0)
    assert not r.pressed()
    b.level = 0  # a bounce shorter than BUTTON_MS
    r.service(10)
    r.service(10 + relay.BUTTON_MS - 1)
    b.level = 1
    r.service(100)
    assert not r.pressed()
    b.level = 0
    r.service(200)
    r.service(200 + relay.BUTTON_MS)
    assert r.pressed() and not r.pressed()  # taken once
    r.service(2000)  # still held: no second press
    assert not r.pressed()
    b.level = 1
    r.service(2100)
    b.level = 0
    r.service(2200)
    r.service(2200 + relay.BUTTON_MS)
    assert r.pressed()


def test_make_and_driver():
    pins = _Pins()
    assert relay.make({}, pins) == ()
    one = relay.make({"relay": {"pin": 25}}, pins)
    assert len(one) == 1 and one[0].kind == "monostable"
    two = relay.make({"relay": [{"pin": 25}, {"kind": "latching", "close_pin": 32, "open_pin": 33}]}, pins)
    assert [r.index for r in two] == [0, 1]
    lines, log = _logged()
    drive = relay.driver(two, log)
    drive(1, True)
    assert pins.made[32].level == 1
    drive(5, False)
    assert lines == ["relay 5: the board file names no such relay (2 configured)"]
    try:
        relay.Relay({"kind": "solenoid", "pin": 1}, pins)
    except ValueError as e:
        assert "solenoid" in str(e)
    else:
        raise AssertionError("a relay kind that does not exist was taken")
