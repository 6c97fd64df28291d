# The board's network link (ports/micropython/dlms_micro_mp/net.py) with a
# stand-in WLAN: a join that fails retries with a doubling backoff, step()
# never waits, the ports run only while the link is up, a lost link is
# joined again, and the credentials come from the provisioned record and
# never reach the log. Runs under pytest and real MicroPython.

import sys

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

from dlms_micro_mp import net  # noqa: E402


class Wlan:
    # joins on the `ok_after`-th connect; isconnected() until dropped
    def __init__(self, ok_after):
        self.ok_after = ok_after
        self.connects = 0
        self.linked = False
        self.active_calls = 0
        self.disconnects = 0
        self.args = None

    def active(self, on=None):
        self.active_calls += 1

    def connect(self, ssid, password):
        self.connects += 1
        self.args = (ssid, password)
        if self.connects >= self.ok_after:
            self.linked = True

    def isconnected(self):
        return self.linked

    def disconnect(self):
        self.disconnects += 1


class Port:
    def __init__(self):
        self.steps = 0

    def step(self, now):
        self.steps += 1
        return False


class Store:
    def __init__(self, d):
        self.d = d

    def get(self, k):
        return self.d.get(k)


def _link(wlan, log, ports):
    return net.NetLink(net.wifi_join(wlan, "meters", "s3cret-pass"), wlan.isconnected, wlan.disconnect,
                       lambda: ports, log, timeout_ms=1000, backoff_ms=1000, max_backoff_ms=4000)


def test_a_failed_join_retries_with_a_doubling_backoff_and_never_waits():
    w = Wlan(ok_after=4)
    lines = []
    port = Port()
    link = _link(w, lines.append, [port])
    tries = []
    t = 0
    while t < 30000 and link.state != net.UP:
        before = w.connects
        link.step(t)  # returns at once: a pass of the loop
        if w.connects != before:
            tries.append(t)
        t += 100
    # tries at 0, then 1 s timeout + 1 s, + 2 s, + 4 s (the cap)
    assert tries == [0, 2000, 5000, 10000], tries
    assert link.failures == 3 and w.disconnects == 3
    assert port.steps == 0  # nothing runs on a link that is down
    link.step(t)
    link.step(t + 100)
    assert port.steps == 2
    assert lines[:3] == ["wifi: not joined within 1000 ms; next try in 1 s",
                         "wifi: not joined within 1000 ms; next try in 2 s",
                         "wifi: not joined within 1000 ms; next try in 4 s"]
    assert "wifi: up" in lines
    assert not any("s3cret" in ln for ln in lines)


def test_a_lost_link_is_joined_again_and_the_ports_are_kept():
    w = Wlan(ok_after=1)
    lines = []
    made = []

    def make():
        made.append(1)
        return [Port()]

    link = net.NetLink(net.wifi_join(w, "meters", "pw"), w.isconnected, w.disconnect, make, lines.append)
    link.step(0)
    link.step(10)
    assert link.state == net.UP and len(made) == 1
    w.linked = False
    link.step(2000)  # the check notices
    assert link.state == net.DOWN and "wifi: link lost, joining again" in lines
    link.step(2010)
    link.step(2020)
    assert link.state == net.UP and w.connects == 2 and len(made) == 1  # the listeners stay
    assert link.backoff_ms == link.first_backoff


def test_credentials_come_from_the_provisioned_record_only():
    rec = net.wifi_record("meters", "s3cret-pass")
    assert net.wifi_credentials(Store({net.STORE_WIFI: rec})) == ("meters", "s3cret-pass")
    assert net.wifi_credentials(Store({})) is None
    assert net.wifi_credentials(None) is None
    for bad in (("", "x"), ("a" * 33, "x"), ("ok", "p" * 65)):
        try:
            net.wifi_record(*bad)
        except ValueError:
            continue
        raise AssertionError(bad)

    class Network:
        STA_IF = 0

        def __init__(self):
            self.w = Wlan(ok_after=1)

        def WLAN(self, iface):
            return self.w

    lines = []
    assert net.wifi_link(Store({}), lambda: [], lines.append, network=Network()) is None
    assert lines == ["wifi: no credentials provisioned (tools/provision.py --wifi-ssid): no network channel"]
    nw = Network()
    link = net.wifi_link(Store({net.STORE_WIFI: rec}), lambda: [], lines.append, network=nw)
    link.step(0)
    assert nw.w.args == ("meters", "s3cret-pass")


def test_a_driver_that_refuses_at_once_is_a_failed_try():
    lines = []

    def join():
        raise OSError(116)

    link = net.NetLink(join, lambda: False, None, None, lines.append, backoff_ms=1000)
    link.step(0)
    assert link.state == net.DOWN and link.failures == 1 and lines[0].startswith("wifi: join refused")
    assert not link.step(500)  # waiting out the backoff: nothing done
    link.step(1000)
    assert link.failures == 2


def test_ntp_sync_at_join_resets_the_clock_offset_and_a_failure_changes_nothing():
    from dlms_micro.cosem import clock

    class Meter:
        # a table of one Clock (class 8) with its state at slot 0
        def __init__(self):
            self.table = ((8, 0, b"\x00\x00\x01\x00\x00\xff", 0, 0, None, None),)
            self.state = [3600, 0, 0]

    class Ntp:
        def __init__(self, ok):
            self.ok = ok
            self.calls = 0

        def settime(self):
            self.calls += 1
            if not self.ok:
                raise OSError(110)

    m = Meter()
    lines = []
    assert not net.ntp_sync(m, lines.append, Ntp(False))
    assert m.state[clock.S_OFFSET] == 3600 and lines[0].startswith("ntp: no sync")
    ok = Ntp(True)
    assert net.ntp_sync(m, lines.append, ok)
    assert m.state[clock.S_OFFSET] == 0 and ok.calls == 1 and lines[-1] == "ntp: clock synced"
    w = Wlan(ok_after=1)
    calls = []
    link = net.NetLink(net.wifi_join(w, "n", "p"), w.isconnected, None, None, None, on_up=lambda: calls.append(1))
    link.step(0)
    link.step(1)
    assert calls == [1]
