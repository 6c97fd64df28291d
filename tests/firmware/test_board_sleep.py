# The battery board's light sleep and watchdog on the real unix firmware
# (frozen dlms_micro_mp.power, board, loop, optical): board_sleep_scenario.py
# builds the ESP32-C3 battery board with stand-ins for machine.lightsleep,
# WDT, UART and Pin on a virtual clock and runs the real Loop.run() for
# 1,030 virtual seconds. Both wake sources: "sample" (the C3: a timer wake
# every poll_ms reads the RX line) and "pin" (ext0 on an ESP32's RTC GPIO:
# the start bit wakes the chip). It sleeps when idle, not during the
# session; the client's IEC 62056-21 wake-up (NULs, pause, sign-on) wakes it
# and a GET over the optical head is served; the load profile captures on
# its quarter hours across the sleeps; the watchdog is fed from the loop
# within its timeout, never by an interrupt handler, and a hung pass is not
# fed and resets.

import os
import subprocess

import pytest
from conftest import REPO, UNIX, need

SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "board_sleep_scenario.py")
PORTABLE = os.path.join(REPO, "tests", "portable")


def _run(wake, *extra):
    need(UNIX)
    p = subprocess.run([UNIX, "-X", "heapsize=1m", SCENARIO, PORTABLE, wake] + list(extra),
                       cwd=os.path.dirname(SCENARIO), capture_output=True, text=True, timeout=50)
    r = {}
    for line in p.stdout.splitlines():
        f = line.split(" ", 2)
        if len(f) == 3 and f[0] == "sleep_fw":
            r[f[1]] = f[2]
    assert r.get("end") == "1", p.stdout[-3000:] + p.stderr[-3000:]
    return r


@pytest.mark.parametrize("wake", ["sample", "pin"])
def test_battery_board_sleeps_wakes_on_the_optical_head_and_serves_a_get(wake):
    r = _run(wake)
    assert r["wake"] == wake
    # idle: asleep most of the time, each sleep within its bound
    asleep, run = int(r["asleep_ms"]), int(r["run_ms"])
    assert asleep > 0.97 * run, (asleep, run)
    longest = int(r["longest_sleep_ms"])
    if wake == "sample":
        assert longest <= 1000 and int(r["sleeps_before_wakeup"]) >= 95
    else:
        # bounded by the watchdog (10 s - 2 s guard) and the capture times
        assert 1000 < longest <= 8000
        assert r["irqs"] == "1"  # the RX pin armed as the wake source
    # the wake-up: NULs lost while asleep (the one that woke it included),
    # the sign-on answered at the first try, the GET served
    assert int(r["lost_on_wake"]) >= 1 and set(bytes.fromhex(r["lost_bytes"])) == {0}
    assert r["signon_retries"] == "0" and r["signons"] == "1"
    assert r["client_state"] == "done" and r["sessions"] == "1"
    assert r["get_reply"] == "c401c10006" + "%08x" % 4242
    assert int(r["wakes_on_line"]) >= 1
    # never asleep in the session; asleep again after the linger
    assert r["sleeps_in_session"] == "0"
    assert 4000 <= int(r["first_sleep_after_session_ms"]) <= 5100
    assert r["line_baud_after"] == "300"
    # the load profile on its quarter hours (120 s and 1,020 s), on time
    caps = [int(x) for x in r["captures_ms"].split(",")]
    assert len(caps) == 2 and 120000 <= caps[0] <= 121000 and 1020000 <= caps[1] <= 1021000, caps
    assert r["profile_rows"] == "2"
    # the watchdog: fed from the loop, never more than its timeout apart,
    # and no interrupt handler installed to feed it
    assert int(r["wdt_feeds"]) > int(r["sleeps"])
    assert int(r["wdt_max_gap_ms"]) < int(r["wdt_timeout_ms"]) == 10000
    assert r["irq_handlers"] == "0"


def test_battery_board_hung_loop_is_not_fed_and_resets():
    r = _run("pin", "hang")
    assert r["hang"] == "reset"
    assert r["hang_feeds"] == "0"
    assert 10000 < int(r["unfed_ms"]) <= 10010  # reset at its timeout


def test_battery_board_stays_awake_until_the_links_inactivity_timeout():
    # a client that reads and never disconnects: awake until the HDLC
    # inactivity timeout (60 s in the battery meter's definition) hands the
    # line back to the 300 Bd sign-on, then asleep again
    r = _run("pin", "nodisc")
    assert r["get_reply"] == "c401c10006" + "%08x" % 4242
    assert 60000 <= int(r["first_sleep_after_session_ms"]) <= 61100
    assert r["line_baud_after"] == "300"
    assert "association released by the link" in r["log"].replace("_", " ")
