# Sources in meter definitions: the compiler's checks of "sources" and of
# every "source:NAME.FIELD" drive, the compiled SOURCES constant (also in a
# module written for a board), the bindings' rules (no value until read,
# last good value after a failure, unit and range refusals, scaler
# conversion, status structure, events and the data-not-valid bit), and the
# router that serves several logical devices on one endpoint.

import copy

import pytest

from dlms_micro import source
from dlms_micro.cosem import profile
from dlms_micro.link.hdlc import HdlcServer
from dlms_micro.link.wrapper import WrapperServer
from dlms_micro.meterdef import build
from dlms_micro.router import Router
from dlms_micro.server import EV_SEND, Channel
from dlms_micro_cpython.meterdef import DefinitionError, compile_definition
from dlms_micro_cpython.meterdef.emit import module_text

BASE = {
    "meter": "dlms-micro/1", "name": "DMI0000000000001", "serial_number": "1",
    "associations": {"public": {"client_sap": 16}},
    "sources": {
        "bus": {"kind": "modbus-rtu", "devices": [{"name": "m1", "slave": 1, "map": "eastron_sdm630"}]},
        "head": {"kind": "iec21-readout", "fields": ["1.8.0", "0.9.1"]},
        "s0": {"kind": "s0", "constant": 500},
    },
    "objects": [
        {"class": "clock", "obis": "0.0.1.0.0.255"},
        {"class": "data", "obis": "0.0.96.11.0.255", "type": "long-unsigned", "drive": "event-code"},
        {"class": "profile-generic", "obis": "0.0.99.98.0.255", "capture_period": 0, "profile_entries": 10,
         "capture_objects": ["0.0.1.0.0.255:2", "0.0.96.11.0.255:2"]},
        {"class": "extended-register", "obis": "1.0.1.8.0.255", "scaler": 0, "unit": "Wh",
         "drive": "source:bus.m1.energy_import"},
        {"class": "register", "obis": "1.0.32.7.0.255", "type": "long-unsigned", "scaler": 0, "unit": "V",
         "drive": "source:bus.m1.voltage_l1"},
        {"class": "register", "obis": "1.0.16.7.0.255", "scaler": 0, "unit": "W", "drive": "source:bus.m1.power_total"},
        {"class": "register", "obis": "1.0.1.8.1.255", "scaler": 0, "unit": "Wh", "drive": "source:head.1.8.0"},
        {"class": "data", "obis": "0.0.96.1.1.255", "type": "octet-string", "drive": "source:head.0.9.1"},
        {"class": "register", "obis": "1.0.1.8.2.255", "scaler": 0, "unit": "Wh", "drive": "source:s0.energy_import"},
        {"class": "data", "obis": "0.0.96.5.1.255", "drive": "source:bus.m1.status"},
    ],
}


def compiled(d=None):
    return compile_definition(copy.deepcopy(d or BASE), "test.json")


def errors(mutate):
    d = copy.deepcopy(BASE)
    mutate(d)
    with pytest.raises(DefinitionError) as ei:
        compile_definition(d)
    return str(ei.value)


def test_sources_compile_to_constants_and_into_the_board_module():
    c = compiled()
    names = [s[0] for s in c.SOURCES]
    assert names == ["bus", "head", "s0"]
    bus = c.SOURCES[0]
    assert bus[:8] == ("bus", "modbus-rtu", "", 9600, "none", 10000, 231, 232)
    assert bus[8][3][0][:2] == (1, "m1")
    text = module_text(c, "test.json")
    assert "SOURCES = (('bus', 'modbus-rtu'," in text
    ns = {}
    exec(text, ns)  # noqa: S102 (our own generated module)
    assert ns["SOURCES"] == c.SOURCES
    # a definition without sources writes no SOURCES (older modules alike)
    d = copy.deepcopy(BASE)
    del d["sources"]
    d["objects"] = d["objects"][:3]
    assert "SOURCES" not in module_text(compile_definition(d))


def test_the_compiler_names_each_fault_of_a_source_or_a_binding():
    assert "no source 'nope'" in errors(lambda d: d["objects"][3].update(drive="source:nope.x"))
    msg = errors(lambda d: d["objects"][3].update(drive="source:bus.m1.energy_imp"))
    assert "source 'bus' has no field 'm1.energy_imp'" in msg
    assert "the register's unit (33) is not the one of source:bus.m1.energy_import" in errors(
        lambda d: d["objects"][3].update(unit="A"))
    assert "sources.bus.kind" in errors(lambda d: d["sources"]["bus"].update(kind="mbus"))
    assert "map 'sdm999': no such register map" in errors(
        lambda d: d["sources"]["bus"]["devices"][0].update(map="sdm999"))
    assert "sources.s0.constant: required" in errors(lambda d: d["sources"]["s0"].pop("constant"))
    assert "sources.head.baud: one of IEC 62056-21's" in errors(lambda d: d["sources"]["head"].update(baud=1000))
    assert "sources.bus.speed: unknown key" in errors(lambda d: d["sources"]["bus"].update(speed=1))
    assert "a data object without type or value" in errors(
        lambda d: d["objects"][9].update(type="unsigned"))
    assert "the data set" not in errors(lambda d: d["objects"][3].update(drive="source:head.9.9.9"))


def make():
    c = compiled()
    meters = build.build_all(c)
    srcs, bind = build.sources(c, meters)
    return c, meters[0], srcs, bind


def state(m, obis):
    e = m.find_ln(bytes(int(x) for x in obis.split(".")), 0)
    return m.state[e[4]], e


def test_a_field_never_read_is_null_data_and_a_failure_keeps_the_last_good_value():
    c, m, srcs, bind = make()
    bus = srcs[0]
    bind.update(1000, 1_700_000_000)
    assert state(m, "1.0.1.8.0.255")[0] is None
    assert state(m, "1.0.32.7.0.255")[0] is None
    i = bus.index("m1.energy_import")
    bus.values[i] = 12345678
    bus.field_status[i] = source.OK
    bus.stamps[i] = 500
    v = bus.index("m1.voltage_l1")
    bus.values[v], bus.field_status[v], bus.stamps[v] = 2301, source.OK, 500  # 230.1 V, scaler -1
    bind.update(1000, 1_700_000_000)
    val, e = state(m, "1.0.1.8.0.255")
    assert val == 12345678 and m.state[e[4] + 1] == source.OK and m.state[e[4] + 2] == 1_700_000_000 - 0
    assert state(m, "1.0.32.7.0.255")[0] == 230  # coarser scaler: truncated
    bus.field_status[i] = source.STALE  # a failed poll
    bind.update(9000, 1_700_000_008)
    val, e = state(m, "1.0.1.8.0.255")
    assert val == 12345678 and m.state[e[4] + 1] == source.STALE and m.state[e[4] + 2] == 1_700_000_000


def test_wrong_unit_or_a_value_outside_the_type_is_not_served():
    c, m, srcs, bind = make()
    bus, head = srcs[0], srcs[1]
    p = bus.index("m1.power_total")
    bus.values[p], bus.field_status[p], bus.stamps[p] = -5, source.OK, 1  # W into double-long-unsigned
    r = head.index("1.8.0")
    head.values[r], head.scalers[r], head.units[r] = 12, 3, 33  # 12 kA: not Wh
    head.field_status[r], head.stamps[r], head.numeric[r] = source.OK, 1, 1
    bind.update(10, 1000)
    assert state(m, "1.0.16.7.0.255")[0] is None
    assert state(m, "1.0.1.8.1.255")[0] is None and bind.refused == 2
    head.units[r] = 30  # 12 kWh with the readout's scaler 3: 12000 Wh
    head.stamps[r] = 2
    bind.update(20, 1000)
    assert state(m, "1.0.1.8.1.255")[0] == 12000


def test_text_fields_fill_string_data_and_s0_counts_from_the_start():
    c, m, srcs, bind = make()
    head, s0 = srcs[1], srcs[2]
    t = head.index("0.9.1")
    head.texts[32 * t: 32 * t + 8] = b"12:30:00"
    head.text_len[t] = 8
    head.field_status[t], head.stamps[t] = source.OK, 5
    s0.pulses(3, 100)  # 500 imp/kWh: 2 Wh a pulse
    bind.update(200, 1000)
    assert state(m, "0.0.96.1.1.255")[0] == b"12:30:00"
    assert state(m, "1.0.1.8.2.255")[0] == 6


def test_status_structure_events_and_the_data_not_valid_bit():
    c, m, srcs, bind = make()
    bus = srcs[0]
    bind.update(0, 1000)
    raw = state(m, "0.0.96.5.1.255")[0]
    assert bytes(raw[:6]) == b"\x02\x07\x16\x02\x16\x00"  # no value yet, no error
    assert raw[26:31] == b"\x06\xff\xff\xff\xff"  # never a good poll
    bus.dev_status[0], bus.dev_error[0], bus.status, bus.error = source.STALE, source.E_TIMEOUT, source.STALE, 1
    bus.timeouts = 3
    bind.update(100, 1010)
    raw = state(m, "0.0.96.5.1.255")[0]
    assert raw[3] == 1 and raw[5] == source.E_TIMEOUT and int.from_bytes(raw[17:21], "big") == 3
    assert bind.profile_status(0) & 0x04 and bind.events == 1
    log = profile.buffer_of(m, state(m, "0.0.99.98.0.255")[1])
    assert log.count == 1
    bus.dev_status[0], bus.dev_error[0], bus.dev_last_good[0] = source.OK, 0, 2000
    bind.update(3000, 1012)
    raw = state(m, "0.0.96.5.1.255")[0]
    assert raw[3] == 0 and int.from_bytes(raw[27:31], "big") == 1  # good 1 s ago
    assert bind.events == 2 and log.count == 2
    assert bind.profile_status(0) & 0x04  # the interval had the failure
    bind.status_taken(0)
    assert bind.profile_status(0) == 0


def _wrapper_frame(src, dst, apdu):
    return bytes((0, 1, src >> 8, src & 255, dst >> 8, dst & 255, len(apdu) >> 8, len(apdu) & 255)) + apdu


AARQ = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF")


@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_router_sends_each_wrapper_message_to_its_logical_device(chunk):
    d = copy.deepcopy(BASE)
    d["logical_devices"] = [{"logical_device": 2, "name": "DMI0000000000002", "serial_number": "2", "objects": []}]
    c = compile_definition(d)
    meters = build.build_all(c)
    chans = [Channel(meters[i], WrapperServer(wports=(c.DEVICES[i][0],))) for i in range(2)]
    r = Router(chans, wrapper=True)
    data = _wrapper_frame(16, 2, AARQ) + _wrapper_frame(16, 1, AARQ) + _wrapper_frame(16, 9, AARQ)
    out = []
    i = 0
    while i < len(data):
        i += r.feed(data, i, min(len(data), i + chunk), 0)
        while True:
            ev = r.next_event(0)
            if not ev:
                break
            if ev == EV_SEND:
                out.append(bytes(r.tx_buf[r.tx_start:r.tx_end]))
    # two AAREs (wPort 9 is no device's: ignored), each from its device
    assert sorted((f[2] << 8 | f[3]) for f in out) == [1, 2]
    assert chans[1].assoc.status and chans[0].assoc.status
    assert chans[0].link.ignored == 1


def test_router_answers_hdlc_by_upper_address():
    d = copy.deepcopy(BASE)
    d["logical_devices"] = [{"logical_device": 2, "name": "DMI0000000000002", "serial_number": "2", "objects": []}]
    c = compile_definition(d)
    meters = build.build_all(c)
    chans = [Channel(meters[i], HdlcServer(logical=c.DEVICES[i][0], physical=17)) for i in range(2)]
    r = Router(chans, wrapper=False)
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import Authentication, InterfaceType

    cl = GXDLMSClient(True, 16, GXDLMSClient.getServerAddress(2, 17, 0), Authentication.NONE, None,
                      InterfaceType.HDLC)
    snrm = bytes(cl.snrmRequest())
    r.feed(snrm, 0, len(snrm), 0)
    ev = r.next_event(0)
    assert ev == EV_SEND and chans[1].link.state != chans[0].link.state
    ua = bytes(r.tx_buf[r.tx_start:r.tx_end])
    assert ua[3] == 0x21 and ua[4] == (2 << 1) | 0  # from upper address 2
    assert r.next_event(0) == 0


def test_serve_source_option_is_checked(tmp_path, capsys):
    from dlms_micro_cpython import cli

    assert cli.main(["serve", "--source", "bus=/dev/null", "--data", str(tmp_path)]) == 2
    assert "need --meter FILE" in capsys.readouterr().err
    import os

    gw = os.path.join(os.path.dirname(__file__), "..", "..", "meters", "modbus_gateway.json")
    assert cli.main(["serve", "--meter", gw, "--source", "bus", "--data", str(tmp_path)]) == 2
    assert "write NAME=DEVICE" in capsys.readouterr().err
    assert cli.main(["serve", "--meter", gw, "--source", "nope=/dev/null", "--data", str(tmp_path / "d2")]) == 2
    assert "the definition has no source 'nope' (it has: bus)" in capsys.readouterr().err
