# Time on each shipped board definition, on the real unix firmware: the
# management association sets the clock; the load profile then captures on
# the new time's quarter-hour boundary (profile.resync, as on the host); the
# board keeps the time it was set to, the rows and (on the retrofits, whose
# definitions have an event log) the clock-adjusted events 4 and 5 across a
# restart (dlms_micro_mp.timekeeping stores the offset; an ESP32's RTC keeps
# the wall clock running across a soft reset).

import datetime
import time

import pytest
from fw_board import BOARDS, has_object, start_board
from interop_peers import HDLC_TCP, WRAPPER, GuruxPeer
from test_board_security import _session, _utc

CLOCK = "0.0.1.0.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
EVENT_LOG = "0.0.99.98.0.255"


def _rows(m, ln):
    def read(p):
        from gurux_dlms.objects import GXDLMSProfileGeneric

        pg = GXDLMSProfileGeneric(ln)
        p.read(pg, 3)
        return p.read_rows(pg, p.client.read(pg, 2))

    return _session(GuruxPeer(m, HDLC_TCP, sap=1), read)


def _clock(m):
    from gurux_dlms.objects import GXDLMSClock

    return _utc(_session(GuruxPeer(m, WRAPPER, sap=1), lambda p: p.read(GXDLMSClock(CLOCK), 2)))


@pytest.mark.parametrize("board", BOARDS)
def test_clock_set_profile_rows_and_events_survive_a_restart(board, tmp_path):
    from gurux_dlms import GXDateTime
    from gurux_dlms.objects import GXDLMSClock

    data = str(tmp_path / "data")
    # the gateway's load profiles are its upstream meters' (logical devices
    # 2, 3), which the unix firmware does not serve over TCP (fw_main)
    gateway = board == "esp32_devkitc_modbus_gateway"
    m = start_board(board, data, str(tmp_path))
    try:
        # two days ahead, 3 s before a quarter hour
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        q = now.replace(minute=now.minute - now.minute % 15, second=0) + datetime.timedelta(days=2, minutes=15)
        want = q - datetime.timedelta(seconds=3)

        def set_time(p):
            clk = GXDLMSClock(CLOCK)
            clk.time = GXDateTime(want)
            p.write(clk, 2)

        _session(GuruxPeer(m, WRAPPER, sap=1), set_time)
        time.sleep(5)
        if not gateway:
            rows = _rows(m, LOAD_PROFILE)
            assert rows, m.log_text()[-2000:]
            stamp = _utc(rows[-1][0])
            assert stamp == q, (stamp, q)
        assert "clock adjusted by" in m.log_text()
        events = _rows(m, EVENT_LOG) if has_object(board, EVENT_LOG) else None
    finally:
        m.stop()
    m = start_board(board, data, str(tmp_path), meter=m)
    try:
        t = _clock(m)
        assert q <= t < q + datetime.timedelta(seconds=30), (t, q)  # the time set, still running
        if not gateway:
            after = _rows(m, LOAD_PROFILE)
            assert _utc(after[0][0]) <= stamp <= _utc(after[-1][0])
        if events is not None:
            codes = [r[1] for r in events]
            assert 4 in codes and 5 in codes, events
            assert [r[1] for r in _rows(m, EVENT_LOG)][: len(codes)] == codes
    finally:
        m.stop()
