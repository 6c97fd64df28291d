# The embedding API (dlms_micro_cpython.api): serve() and its MeterHandle,
# each method checked against what a real client (gurux-dlms, through
# tests/interop/interop_peers.py's GuruxPeer) reads from the served meter.

import datetime
import json
import os
import socket
import sys

import pytest

pytest.importorskip("gurux_dlms")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))

from interop_peers import DEMO_KEYS, HDLC_PTY, HDLC_TCP, METER_TITLE, WRAPPER, GuruxPeer  # noqa: E402

import dlms_micro_cpython  # noqa: E402
from dlms_micro_cpython import api, meterdef, storage  # noqa: E402

UTC = datetime.timezone.utc
CLOCK = "0.0.1.0.0.255"
ENERGY = "1.0.1.8.0.255"
ENERGY_EXPORT = "1.0.2.8.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
EVENT_LOG = "0.0.99.98.0.255"
LDN = "0.0.42.0.0.255"
SMALL_METER = os.path.join(ROOT, "docs", "examples", "small_meter.json")


def gurux(meter, transport=WRAPPER, sap=32, **kw):
    return GuruxPeer(meter, transport, sap=sap, **kw).connect()


def end(p):
    p.release()
    p.disconnect()
    p.close()


def read(meter, cls, obis, attr=2, sap=32, transport=WRAPPER):
    p = gurux(meter, transport, sap)
    try:
        obj = cls(obis)
        v = p.read(obj, attr)
        return v, obj
    finally:
        end(p)


def gurux_rows(meter, obis):
    # a Profile generic's buffer as the reader reads it
    from gurux_dlms.objects import GXDLMSProfileGeneric

    p = gurux(meter)
    try:
        pg = GXDLMSProfileGeneric(obis)
        p.read(pg, 3)
        return p.read_rows(pg, p.client.read(pg, 2))
    finally:
        end(p)


def now():
    return datetime.datetime.now(UTC)


@pytest.fixture
def meter():
    with api.serve(seed=1) as m:
        yield m


def test_the_package_exports_the_api():
    assert dlms_micro_cpython.serve is api.serve
    assert dlms_micro_cpython.MeterHandle is api.MeterHandle


@pytest.mark.parametrize("transport", (WRAPPER, HDLC_TCP, HDLC_PTY))
def test_a_client_reads_the_meter_at_the_handles_addresses(transport):
    from gurux_dlms.objects import GXDLMSData

    with api.serve(pty=True) as m:
        assert m.wrapper_address[0] == "127.0.0.1" and m.hdlc_address[0] == "127.0.0.1"
        assert os.path.exists(m.pty_path)
        assert (m.logical_address, m.physical_address) == (1, 17)
        v, _ = read(m, GXDLMSData, LDN, sap=16, transport=transport)
        assert bytes(v) == b"DMI0000000012345" == m.value(LDN)


def test_the_clients_saps_authentication_and_password_associate():
    with api.serve() as m:
        assert [(c.sap, c.authentication) for c in m.clients] == [(16, "none"), (32, "low"), (1, "high-gmac")]
        reader = m.client(32)
        assert reader == m.client("reader") and reader.password == b"12345678"
        assert m.client(1).security_policy == "authenticated-encrypted" and m.client(1).password is None
        with pytest.raises(KeyError):
            m.client(99)
        end(gurux(m, sap=reader.sap, password=reader.password))
        with pytest.raises(Exception):
            gurux(m, sap=reader.sap, password=b"wrong")


def test_the_demo_keys_and_system_title_are_in_force_by_default():
    with api.serve() as m:
        assert m.keys == DEMO_KEYS and m.uses_demo_keys
        assert m.system_title == METER_TITLE
        end(gurux(m, sap=1, keys=m.keys))  # HLS-GMAC with suite 0


def test_keys_given_are_in_force_and_a_client_needs_them():
    keys = {"ek": bytes(range(16, 32)), "ak": bytes(range(32, 48)), "kek": bytes(range(48, 64)),
            "system_title": b"ABC\x00\x00\x00\x00\x07"}
    with api.serve(keys=keys) as m:
        assert not m.uses_demo_keys
        assert m.keys == {k: keys[k] for k in ("ek", "ak", "kek")}
        assert m.system_title == keys["system_title"]
        end(gurux(m, sap=1, keys=m.keys))
        with pytest.raises(Exception):
            gurux(m, sap=1, keys=DEMO_KEYS)


def test_keys_from_a_key_file(tmp_path):
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"ek": "11" * 16, "ak": "22" * 16, "kek": "33" * 16}))
    with api.serve(keys=str(f)) as m:
        assert m.keys == {"ek": b"\x11" * 16, "ak": b'"' * 16, "kek": b"3" * 16}
        end(gurux(m, sap=1, keys=m.keys))


def test_set_value_is_what_a_client_reads(meter):
    from gurux_dlms.objects import GXDLMSRegister

    meter.set_value(ENERGY, 12345)
    v, _ = read(meter, GXDLMSRegister, ENERGY)
    assert 12345 <= v < 12400  # the simulation counts on from the value set
    meter.set_value(ENERGY_EXPORT, 7)
    assert 7 <= meter.value(ENERGY_EXPORT) < 50


def test_set_value_refusals_name_the_problem(meter):
    with pytest.raises(TypeError, match="double-long-unsigned"):
        meter.set_value(ENERGY, "lots")
    with pytest.raises(KeyError):
        meter.set_value("1.2.3.4.5.6", 1)
    with pytest.raises(api.AccessRefused) as e:
        meter.set_value(ENERGY, (0, 30), attribute=3)  # scaler_unit is static
    assert e.value.result == 3
    with pytest.raises(api.AccessRefused):
        meter.set_value(ENERGY, b"\x01\x00\x01\x08\x00\xff", attribute=1)


def test_value_is_what_a_client_reads(meter):
    from gurux_dlms.objects import GXDLMSClock, GXDLMSRegister

    v, _ = read(meter, GXDLMSRegister, ENERGY, attr=3)  # scaler, unit
    assert list(v) == list(meter.value(ENERGY, 3)) == [0, 30]
    _, clk = read(meter, GXDLMSClock, CLOCK, sap=16)
    t = meter.value(CLOCK)
    assert isinstance(t, datetime.datetime) and t.tzinfo is not None
    assert abs((clk.time.value - t).total_seconds()) < 3
    assert abs((t - now()).total_seconds()) < 3
    assert meter.value(CLOCK, 1) == bytes((0, 0, 1, 0, 0, 255))


def test_attributes_of_an_association_are_refused_outside_one(meter):
    with pytest.raises(api.AccessRefused, match="association"):
        meter.value("0.0.40.0.0.255", 2)  # the object list of the association serving
    assert meter.value("0.0.40.0.0.255", 1) == bytes((0, 0, 40, 0, 0, 255))


def test_set_value_of_the_clock_sets_it_as_a_client_would(meter):
    from gurux_dlms.objects import GXDLMSClock

    target = now().replace(microsecond=0) + datetime.timedelta(hours=2)
    meter.set_value(CLOCK, target)
    _, clk = read(meter, GXDLMSClock, CLOCK, sap=16)
    assert abs((clk.time.value - target).total_seconds()) < 3
    with pytest.raises(ValueError, match="naive"):
        meter.set_value(CLOCK, datetime.datetime(2030, 1, 1))


def test_advance_moves_the_clock_and_fills_the_profile(meter):
    from gurux_dlms.objects import GXDLMSClock

    before = len(meter.profile_rows(LOAD_PROFILE))
    energy = meter.value(ENERGY)
    t = meter.advance(6 * 3600)
    assert abs((t - now()).total_seconds() - 6 * 3600) < 3
    _, clk = read(meter, GXDLMSClock, CLOCK, sap=16)
    assert abs((clk.time.value - t).total_seconds()) < 3
    rows = meter.profile_rows(LOAD_PROFILE)
    assert len(rows) - before in (24, 25)  # a row per quarter hour
    assert all(r[0].minute % 15 == 0 and r[0].second == 0 for r in rows[before:])
    assert rows[-1][2] > energy  # the household drew energy meanwhile
    # a client reads the same rows
    raw = gurux_rows(meter, LOAD_PROFILE)
    assert len(raw) >= len(rows)  # the simulation may have captured one more
    assert [r[2] for r in raw[: len(rows)]] == [r[2] for r in rows]
    # time passed: no clock adjusted event
    assert [e.code for e in meter.events()] == [2]
    with pytest.raises(ValueError):
        meter.advance(-1)


def test_advance_with_an_accelerated_clock():
    with api.serve(accelerate=60) as m:
        t = m.advance(86400)
        assert (t - now()).total_seconds() >= 86400
        assert len(m.profile_rows(LOAD_PROFILE)) >= 96


def test_a_wall_clock_given_is_the_meters_time():
    start = datetime.datetime(2030, 6, 1, 12, 0, tzinfo=UTC).timestamp()
    with api.serve(wall_clock=lambda: start) as m:
        assert m.now() == datetime.datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
        assert m.advance(900) == datetime.datetime(2030, 6, 1, 12, 15, tzinfo=UTC)
        assert m.profile_rows(LOAD_PROFILE)[-1][0] == datetime.datetime(2030, 6, 1, 12, 15, tzinfo=UTC)


def test_events_decode_the_event_log_a_client_reads(meter):
    from gurux_dlms import GXDateTime
    from gurux_dlms.objects import GXDLMSClock

    p = gurux(meter, sap=1)
    try:
        clk = GXDLMSClock(CLOCK)
        clk.time = GXDateTime(now().replace(microsecond=0) + datetime.timedelta(hours=1))
        p.write(clk, 2)
    finally:
        end(p)
    meter.advance(2)  # the meter notices the clock set at its next step
    ev = meter.events()
    assert [e.code for e in ev] == [2, 4, 5]
    assert ev == meter.events(EVENT_LOG) and {e.log for e in ev} == {EVENT_LOG}
    assert abs((ev[2].time - ev[1].time).total_seconds() - 3600) < 5
    raw = gurux_rows(meter, EVENT_LOG)
    assert [r[1] for r in raw] == [2, 4, 5]


def test_written_logs_the_sets_and_actions_clients_made(meter):
    from gurux_dlms import GXDateTime
    from gurux_dlms.objects import GXDLMSClock, GXDLMSRegister

    assert meter.written() == []
    meter.set_value(ENERGY, 5)  # not a client's
    target = now().replace(microsecond=0) + datetime.timedelta(minutes=30)
    p = gurux(meter, sap=1)
    try:
        clk = GXDLMSClock(CLOCK)
        clk.time = GXDateTime(target)
        p.write(clk, 2)
        reg = GXDLMSRegister(ENERGY_EXPORT)
        p.read(reg, 3)
        p.method(reg.reset(p.client))
    finally:
        end(p)
    w = meter.written()
    assert [(x.client_sap, x.service, x.obis, x.class_id, x.index) for x in w] == [
        (1, "set", CLOCK, 8, 2), (1, "action", ENERGY_EXPORT, 3, 1)]
    assert abs((w[0].value - target).total_seconds()) < 2
    assert w[0].data[:2] == b"\x09\x0c"  # octet-string(12) as received
    assert w[1].value == 0 and w[1].data == b"\x0f\x00"  # reset's integer 0
    assert abs((w[0].time - now()).total_seconds()) < 3


def test_refused_writes_are_not_logged(meter):
    from gurux_dlms.objects import GXDLMSRegister

    p = gurux(meter, sap=32)  # the reader may not reset
    try:
        reg = GXDLMSRegister(ENERGY)
        p.read(reg, 3)
        with pytest.raises(Exception):
            p.method(reg.reset(p.client))
    finally:
        p.close()
    assert meter.written() == []


def test_stop_closes_the_ports_and_keeps_the_state_in_the_data_directory(tmp_path):
    m = api.serve(data_dir=tmp_path / "d")
    address = m.wrapper_address
    m.set_value(ENERGY, 50000)
    with pytest.raises(storage.DataDirLocked):
        api.serve(data_dir=tmp_path / "d")
    m.stop()
    m.stop()  # twice: nothing
    assert m.wrapper_address is None
    with pytest.raises(RuntimeError):
        m.value(ENERGY)
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=2).close()
    with api.serve(data_dir=tmp_path / "d") as again:
        assert 50000 <= again.value(ENERGY) < 50100
        assert [e.code for e in again.events()] == [2, 1, 2]  # power up, down, up


def test_definitions_as_path_dict_and_compiled():
    from gurux_dlms.objects import GXDLMSData

    with open(SMALL_METER) as f:
        d = json.load(f)
    for definition in (SMALL_METER, d, meterdef.load(SMALL_METER)):
        with api.serve(definition) as m:
            assert m.value(ENERGY) >= 123456
            v, _ = read(m, GXDLMSData, LDN, sap=16)
            assert bytes(v) == b"DMI0000000000042"


def test_identity_overrides(tmp_path):
    from gurux_dlms.objects import GXDLMSData

    with api.serve(SMALL_METER, name="DMI0000000000777", serial_number="00000777") as m:
        v, _ = read(m, GXDLMSData, LDN, sap=16)
        assert bytes(v) == b"DMI0000000000777"
        assert m.system_title == b"DMI" + (777).to_bytes(5, "big")
    with api.serve(system_title=bytes.fromhex("4142430000000009")) as m:  # the demo, another title
        assert m.system_title == b"ABC\x00\x00\x00\x00\x09"
    with pytest.raises(TypeError):
        api.serve(meterdef.load(SMALL_METER), name="X")
    with pytest.raises(meterdef.DefinitionError):
        api.serve({"meter": "dlms-micro/1"})


def test_history_backfills_profiles_and_the_port_in_use_is_an_error():
    with api.serve(history=2) as m:
        rows = m.profile_rows(LOAD_PROFILE)
        assert len(rows) >= 2 * 96 - 1
        assert rows[-1][0] <= m.now()
        with pytest.raises(OSError):
            api.serve(wrapper_port=m.wrapper_address[1], hdlc_port=None)


def test_call_runs_in_the_meters_thread(meter):
    import threading

    name = meter.call(lambda sim: threading.current_thread().name)
    assert name != threading.current_thread().name
    assert meter.call(lambda sim: sim.logical_address) == 1


def test_the_readmes_serve_example_runs(monkeypatch, capsys):
    import re

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("## Test your head-end against it"):]
    code = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "from dlms_micro_cpython import serve" in b]
    assert len(code) == 1
    monkeypatch.chdir(ROOT)
    exec(compile(code[0], "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("('127.0.0.1', ") and "datetime.datetime(" in out[1]


@pytest.mark.parametrize("transport", (WRAPPER, HDLC_TCP))
def test_dlms_cosem_reads_the_handle_as_a_meter(transport):
    # dlms-cosem's peer takes the handle where it takes the interop meter:
    # HLS-GMAC with the handle's keys, the rows that profile_rows() gives
    pytest.importorskip("dlms_cosem")
    import structlog

    from interop_peers import CosemPeer

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with api.serve(history=1, seed=2) as m:
        p = CosemPeer(m, transport, sap=1, keys=m.keys).connect()
        try:
            p.associate()
            rows = p.get_rows(LOAD_PROFILE)
            p.set(7, "1.0.99.2.0.255", 4, b"\x06\x00\x00\x02\x58")  # capture_period 600 s
            p.release()
        finally:
            p.close()
        mine = m.profile_rows(LOAD_PROFILE)
        assert [r[2] for r in rows[: len(mine)]] == [r[2] for r in mine]
        assert [(w.client_sap, w.obis, w.index, w.value) for w in m.written()] == [(1, "1.0.99.2.0.255", 4, 600)]
        assert m.value("1.0.99.2.0.255", 4) == 600
