# IEC 62056-21 readout client (source.iec21_readout). Runs under pytest and
# under MicroPython.
#
# Public examples used: the message formats of IEC 62056-21:2002 clause 6.3
# (request "/?!" and "/?" device address "!", identification "/XXXZ\W
# identification", acknowledgement/option select "ACK V Z Y", data message
# STX ... "!" CR LF ETX BCC, data sets "address(value*unit)") with the mode
# A, B and C flows of 6.4, the reduced ID codes of IEC 62056-6-1 ("1.8.0",
# "F.F", "C.1.0", "1-0:1.8.0*255"), and the readout line of issue 14
# ("1.8.0(012345.678*kWh)"). The standard's text itself was not at hand: the
# readouts below are built from those formats, with a maximum demand line
# "1.6.0(value*kW)(time stamp)" for several values on one line.

from source_support import alloc, data_message, feed, pump
from support import raises

from dlms_micro import source
from dlms_micro.source import iec21_readout as r

IDENT_C = b"/ABC5\\2METER01\r\n"
BLOCK = (
    b"F.F(00000000)\r\n"
    b"C.1.0(12345678)\r\n"
    b"0.9.1(12:30:00)\r\n"
    b"0.9.2(26-12-07)\r\n"
    b"1.8.0(012345.678*kWh)\r\n"
    b"1.8.1(008000.000*kWh)1.8.2(004345.678*kWh)\r\n"
    b"2.8.0(000001.2*kWh)\r\n"
    b"1.6.0(0001.234*kW)(2612071215)\r\n"
    b"32.7.0(230.1*V)\r\n"
    b"31.7.0(5.123*A)\r\n"
    b"!\r\n"
)
FIELDS = ["1.8.0", "1-0:1.8.1*255", "1.8.2", "2.8.0", "F.F", "C.1.0", "0.9.1", "1.6.0", "1.6.0[1]", "32.7.0", "31.7.0"]


def mode_c(fields=FIELDS, **kw):
    s = r.Readout(fields, **kw)
    log = []
    s.log = log.append
    return s, log


def run_c(s, t, ident=IDENT_C, block=BLOCK):
    # One complete mode C poll starting at t; returns the events.
    out = pump(s, t)
    feed(s, ident, t + 300)
    pump(s, t + 300, out)
    pump(s, t + 300 + s.ack_delay, out)
    feed(s, data_message(block), t + 1000)
    pump(s, t + 1000, out)
    return out


def test_mode_c_exchange_exact_bytes():
    s, log = mode_c(max_baud=9600)
    out = pump(s, 0)
    assert out == [("send", b"/?!\r\n")]
    assert (s.baud, s.data_bits, s.parity) == (300, 7, "E")
    feed(s, IDENT_C, 300)
    assert pump(s, 300) == []  # the ACK waits the reaction time
    assert pump(s, 300 + 199) == []
    assert pump(s, 300 + 200) == [("send", b"\x06050\r\n"), ("baud", 9600)]
    assert bytes(s.manufacturer) == b"ABC"
    assert bytes(s.ident[: s.ident_len]) == b"\\2METER01"
    assert s.mode == 0x43
    feed(s, data_message(BLOCK), 900, chunk=7)
    assert pump(s, 900) == [("done", source.OK, source.E_NONE)]
    assert s.status == source.OK and s.last_good == 900 and s.good_polls == 1
    assert log == []


def test_values_scalers_units_and_text():
    s, _ = mode_c()
    run_c(s, 0)
    want = {
        "1.8.0": (12345678, 0, 30, b"012345.678"),
        "1-0:1.8.1*255": (8000000, 0, 30, b"008000.000"),
        "1.8.2": (4345678, 0, 30, b"004345.678"),
        "2.8.0": (12, 2, 30, b"000001.2"),  # 1.2 kWh = 12 * 100 Wh
        "F.F": (0, 0, 255, b"00000000"),
        "C.1.0": (12345678, 0, 255, b"12345678"),
        "1.6.0": (1234, 0, 27, b"0001.234"),
        "1.6.0[1]": (2612071215, 0, 255, b"2612071215"),
        "32.7.0": (2301, -1, 35, b"230.1"),
        "31.7.0": (5123, -3, 33, b"5.123"),
    }
    for name in want:
        i = s.index(name)
        v, sc, unit, text = want[name]
        assert (s.values[i], s.scalers[i], s.units[i], s.text(i)) == (v, sc, unit, text), name
        assert s.field_status[i] == source.OK and s.numeric[i] == 1 and s.stamps[i] == 1000
    i = s.index("0.9.1")
    assert s.numeric[i] == 0 and s.text(i) == b"12:30:00" and s.field_status[i] == source.OK


def test_device_address_in_the_request():
    s = r.Readout(["1.8.0"], address=b"12345678")
    assert pump(s, 0) == [("send", b"/?12345678!\r\n")]


def test_max_baud_lower_than_offer_and_offer_lower_than_max():
    s, _ = mode_c(max_baud=2400)
    out = run_c(s, 0)
    assert ("send", b"\x06030\r\n") in out and ("baud", 2400) in out
    s, _ = mode_c(max_baud=19200)
    out = run_c(s, 0, ident=b"/ABC4METER\r\n")
    assert ("send", b"\x06040\r\n") in out and ("baud", 4800) in out
    assert s.status == source.OK


def test_next_poll_goes_back_to_300_baud_first():
    s, _ = mode_c(interval=60000)
    run_c(s, 0)
    assert s.baud == 9600
    assert pump(s, 59000) == []
    assert pump(s, 60000) == [("baud", 300), ("send", b"/?!\r\n")]
    assert s.baud == 300


def test_mode_a_and_mode_b():
    s, _ = mode_c()
    assert pump(s, 0) == [("send", b"/?!\r\n")]
    feed(s, b"/ABC:METER\r\n", 300)
    assert pump(s, 300) == []  # mode A: no ACK, no baud change
    assert s.mode == 0x41
    feed(s, data_message(BLOCK), 500)
    assert pump(s, 500) == [("done", source.OK, source.E_NONE)]
    assert s.baud == 300
    s, _ = mode_c()
    pump(s, 0)
    feed(s, b"/ABCEMETER\r\n", 300)
    assert pump(s, 300) == [("baud", 9600)]  # mode B: E = 9600 Bd, no ACK
    assert s.mode == 0x42
    feed(s, data_message(BLOCK), 500)
    assert pump(s, 500)[-1] == ("done", source.OK, source.E_NONE)


def test_echo_of_the_request_is_skipped():
    s, _ = mode_c()
    pump(s, 0)
    feed(s, b"/?!\r\n" + IDENT_C, 300)
    assert pump(s, 500)[0] == ("send", b"\x06050\r\n")


def test_wrong_bcc_keeps_the_last_good_values_and_logs_once():
    s, log = mode_c(retries=1, retry_pause=1600)
    run_c(s, 0)
    i = s.index("1.8.0")
    bad = BLOCK.replace(b"012345.678", b"099999.999")
    msg = bytearray(data_message(bad))
    msg[-1] ^= 0x01
    # two attempts, both with a wrong BCC
    out = pump(s, 0 + 60000)
    t = 60000
    for attempt in range(2):
        feed(s, IDENT_C, t + 300)
        pump(s, t + 300 + 200, out)
        feed(s, msg, t + 1000)
        pump(s, t + 1000, out)
        t += 1000 + 1600
        pump(s, t, out)
    assert out[-1] == ("done", source.STALE, source.E_CHECK)
    assert s.bad_bcc == 2 and s.failed_polls == 1 and s.attempts == 3
    assert s.values[i] == 12345678 and s.field_status[i] == source.STALE
    assert s.field_error[i] == source.E_CHECK and s.stamps[i] == 1000
    assert s.last_good == 1000
    assert log == ["iec21 readout: wrong BCC, readout discarded"]
    # recovery
    run_c(s, 120000)
    assert s.status == source.OK and s.field_status[i] == source.OK
    assert log[-1] == "source: recovered"


def test_retry_after_a_timeout_succeeds():
    s, log = mode_c(retries=2)
    out = pump(s, 0)
    assert pump(s, 1500 + 167) == []  # t_r max after the request's 5 chars at 300 Bd
    out = pump(s, 1500 + 168)
    assert s.timeouts == 1 and out == []
    out = pump(s, 1668 + 1600)
    assert out == [("send", b"/?!\r\n")]
    t = 1668 + 1600
    feed(s, IDENT_C, t + 300)
    pump(s, t + 500)
    feed(s, data_message(BLOCK), t + 900)
    assert pump(s, t + 900) == [("done", source.OK, source.E_NONE)]
    assert log == ["iec21 readout: no answer", "source: recovered"]


def test_no_answer_at_all_never_invents_values():
    s, _ = mode_c(retries=1)
    t = 0
    out = []
    for t in range(0, 10000, 100):
        pump(s, t, out)
    assert out.count(("send", b"/?!\r\n")) == 2
    assert ("done", source.NO_VALUE, source.E_TIMEOUT) in out
    for i in range(len(s.fields)):
        assert s.field_status[i] == source.NO_VALUE and s.values[i] == 0


def test_missing_brackets_unknown_unit_overlong_value():
    s, log = mode_c(["1.8.0", "2.8.0", "3.8.0", "4.8.0", "1.8.1"])
    block = (
        b"1.8.0(000100.000*kWh\r\n"  # no closing bracket
        b"2.8.0 000200.000*kWh)\r\n"  # no opening bracket
        b"3.8.0(000300.000*furlong)\r\n"  # unknown unit
        b"4.8.0(" + b"1" * 33 + b"*kvarh)\r\n"  # value over 32 characters
        b"1.8.1(000500.000*kWh)\r\n"
        b"!\r\n"
    )
    out = run_c(s, 0, block=block)
    assert out[-1] == ("done", source.STALE, source.E_FORMAT)
    st = [(s.field_status[i], s.field_error[i]) for i in range(5)]
    assert st == [
        (source.NO_VALUE, source.E_FORMAT),
        (source.NO_VALUE, source.E_MISSING),  # its address is unreadable
        (source.NO_VALUE, source.E_UNIT),
        (source.NO_VALUE, source.E_OVERLONG),
        (source.OK, source.E_NONE),
    ]
    assert s.values[4] == 500000
    # the address without "(" runs on past 16 characters: overlong too
    assert s.bad_units == 1 and s.overlong == 2 and s.bad_format == 1
    assert log == ["iec21 readout: a field is missing or unreadable"]


def test_reserved_baud_character_is_refused():
    s, log = mode_c(retries=0)
    pump(s, 0)
    feed(s, b"/ABC7METER\r\n", 300)
    out = pump(s, 300)
    assert out == [("done", source.NO_VALUE, source.E_BAUD)]
    assert s.bad_baud == 1
    s, log = mode_c(retries=0, max_baud=2400)
    pump(s, 0)
    feed(s, b"/ABCEMETER\r\n", 300)  # mode B at 9600, above what we accept
    assert pump(s, 300) == [("done", source.NO_VALUE, source.E_BAUD)]


def test_malformed_and_overlong_identification():
    s, _ = mode_c(retries=0)
    pump(s, 0)
    feed(s, b"/A1C5METER\r\n", 300)
    assert pump(s, 300) == [("done", source.NO_VALUE, source.E_FORMAT)]
    s, _ = mode_c(retries=0)
    pump(s, 0)
    feed(s, b"/ABC5" + b"X" * 17 + b"\r\n", 300)
    assert pump(s, 300) == [("done", source.NO_VALUE, source.E_OVERLONG)]


def test_data_block_without_end_line_and_interrupted_message():
    s, _ = mode_c(retries=0)
    out = run_c(s, 0, block=b"1.8.0(000001.000*kWh)\r\n")
    assert out[-1] == ("done", source.NO_VALUE, source.E_FORMAT)
    s, _ = mode_c(retries=0)
    pump(s, 0)
    feed(s, IDENT_C, 300)
    pump(s, 500)
    msg = data_message(BLOCK)
    feed(s, msg[:20], 900)
    assert pump(s, 2400) == []
    assert pump(s, 2401) == [("done", source.NO_VALUE, source.E_TIMEOUT)]


def test_parse_id_forms():
    out = bytearray(6)

    def pid(text):
        b = text.encode()
        if not r.parse_id(b, 0, len(b), out, 0):
            return None
        return tuple(out)

    assert pid("1-0:1.8.0*255") == (1, 0, 1, 8, 0, 255)
    assert pid("1.8.0") == (1, 0, 1, 8, 0, 255)
    assert pid("1.8.0*12") == (1, 0, 1, 8, 0, 12)
    assert pid("1.8.0&12") == (1, 0, 1, 8, 0, 12)
    assert pid("F.F") == (0, 0, 97, 97, 0, 255)
    assert pid("C.1.0") == (0, 0, 96, 1, 0, 255)
    assert pid("C.90.1") == (0, 0, 96, 90, 1, 255)
    assert pid("0.9.1") == (1, 0, 0, 9, 1, 255)
    assert pid("0-0:96.1.0") == (0, 0, 96, 1, 0, 255)
    assert pid("1.8") == (1, 0, 1, 8, 0, 255)
    for bad in ("", "1", "1.8.0.0", "1-0.8.0", "1:0:1.8.0", "256.8.0", "1.8.0*", "X.1.0", "C1.0", "1.8.0)", "1..0", "1.F.0F"):
        assert pid(bad) is None, bad
    assert r.parse_field("1.6.0[1]") == (bytes((1, 0, 1, 6, 0, 255)), 1)
    raises(ValueError, r.Readout, ["1.8.0", "1-0:1.8.0*255"])  # the same data set twice
    raises(ValueError, r.Readout, ["1.8.0", "1.8.x"])
    assert r.parse_field("1.0.1.8.0.255") == (bytes((1, 0, 1, 8, 0, 255)), 0)
    assert r.parse_number(b"-012.50", 0, 7) == (-1250, -2)
    assert r.parse_number(b"12:00", 0, 5) is None
    assert r.parse_number(b"1.2.3", 0, 5) is None
    assert r.parse_number(b"", 0, 0) is None


def test_units_map_to_the_blue_book_enum():
    for name, unit, exp in (
        (b"kWh", 30, 3), (b"Wh", 30, 0), (b"kvarh", 32, 3), (b"kVArh", 32, 3), (b"kVAh", 31, 3),
        (b"kW", 27, 3), (b"V", 35, 0), (b"A", 33, 0), (b"Hz", 44, 0), (b"m3", 13, 0), (b"MWh", 30, 6),
    ):
        row = source.unit_lookup(name, 0, len(name))
        assert row >= 0 and source.UNIT_TABLE[row][1:] == (unit, exp), name
    assert source.unit_lookup(b"KWH", 0, 3) == -1  # only the var family ignores case
    assert source.unit_lookup(b"furlong", 0, 7) == -1


def test_steady_state_poll_allocates_nothing():
    s, _ = mode_c(interval=60000)
    msg = data_message(BLOCK)
    state = [0]

    def poll():
        t = state[0]
        state[0] = t + 60000
        s.poll(t)
        while s.next_event(t):
            pass
        s.feed(IDENT_C, 0, len(IDENT_C), t + 300)
        while s.next_event(t + 500):
            pass
        s.feed(msg, 0, len(msg), t + 900)
        while s.next_event(t + 900):
            pass

    used = alloc(poll)
    assert s.status == source.OK
    # 1.6.0[1] = 2612071215 is above 2**30: a big int on MicroPython; its
    # parse allocates, everything else nothing
    assert used is None or used <= 160, used
