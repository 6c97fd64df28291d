# `dlms-micro decode` (ports/cpython/dlms_micro_cpython/decode.py): real
# captures of gurux-dlms and dlms-cosem reading the demo meter decode without
# a fault and with the right names; the Green Book's suite 0 vectors decipher
# with the demo keys (and fail their tag with another key); truncated,
# garbled and random input is decoded as far as it goes and said where it
# stopped, exit code 1, never a traceback; the README's examples run.

import datetime
import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlms_micro_cpython import decode as D
from dlms_micro_cpython.cli import main as cli_main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_KEYS = {"ek": "000102030405060708090A0B0C0D0E0F", "ak": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"}
WRONG_KEYS = {"ek": "0F0E0D0C0B0A09080706050403020100", "ak": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"}

# Green Book suite 0 examples (EK 00..0F, AK D0..DF): GET of the clock
# 0.0.1.0.0.255 attribute 2, IC 01234567; the system title that makes them
# hold is 4D4D4D0000BC614E (see tests/portable/test_security_suite0.py, where
# the SC 0x10 and response forms were computed with `cryptography`).
GB_TITLE = "4D4D4D0000BC614E"
GLO_GET_30 = "C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B"
GLO_GET_20 = "C8122001234567411312FF935A47566827C467BC"
GLO_GET_10 = "C81E1001234567C0010000080000010000FF020006725D910F9221D263877516"
GLO_RESPONSE_30 = "CC1A30012345674513D3FF9D5A47675117AA046EB79A89795506BB02"
GENERAL_GET = "DB084D4D4D00000000011E300000000218D9F03E5F776097EB56BD5F07197E741F10D6A9B5F481FD55"

# The Green Book's AARQ/AARE example pair: LLS with password "12345678",
# proposed conformance 00 7E 1F and max PDU 0x04B0; the AARE accepts with
# conformance 00 50 1F and max PDU 0x01F4.
GB_AARQ = ("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
           "BE10040E01000000065F1F0400007E1F04B0")
GB_AARE = "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000501F01F40007"


def run_cli(args, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    old_in, old_out, old_err = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        rc = cli_main(["decode"] + list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = old_in, old_out, old_err
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def demo_keys(tmp_path):
    p = tmp_path / "keys.json"
    p.write_text(json.dumps(DEMO_KEYS))
    return str(p)


def keys_of(d):
    return {k: bytes.fromhex(v) for k, v in d.items()}


def summaries(rep):
    return [n.summary or "" for n in rep.roots]


def all_text(rep):
    return D.render_text(rep)


# ------------------------------------------------------------ known vectors


def test_green_book_aarq_aare_pair_every_field_named_password_hidden():
    rep = D.decode_bytes(bytes.fromhex(GB_AARQ + GB_AARE))
    assert rep.ok, rep.errors
    assert summaries(rep) == ["AARQ LN LLS, InitiateRequest dlms 6, max PDU 1200",
                              "AARE LN accepted, InitiateResponse dlms 6, max PDU 500"]
    t = all_text(rep)
    assert "application-context-name: 2.16.756.5.8.1.1 Logical_Name_Referencing_No_Ciphering" in t
    assert "mechanism-name: 2.16.756.5.8.2.1 low-level-security (LLS)" in t
    assert "sender-acse-requirements: authentication requested" in t
    assert "calling-authentication-value: charstring, 8 bytes (password, not shown)" in t
    assert "12345678" not in t and "3132333435363738" not in t
    assert "result: 0 (accepted)" in t and "acse-service-user: 0 (null)" in t
    proposed = re.search(r"conformance: 0x007E1F: (.*)", t).group(1).split(", ")
    assert proposed == ["priority-mgmt-supported", "attribute0-supported-with-get", "block-transfer-with-get-or-read",
                        "block-transfer-with-set-or-write", "block-transfer-with-action", "multiple-references",
                        "get", "set", "selective-access", "event-notification", "action"]
    assert "conformance: 0x00501F: priority-mgmt-supported, block-transfer-with-get-or-read, get, set, " in t
    assert "vaa-name: 0x0007 (LN)" in t
    assert "client-max-receive-pdu-size: 1200" in t and "server-max-receive-pdu-size: 500" in t


def test_green_book_ciphered_get_deciphered_with_the_demo_keys(demo_keys):
    rc, out, err = run_cli(["--keys", demo_keys, "--client-title", GB_TITLE, GLO_GET_30])
    assert rc == 0, out + err
    assert "security-control: 0x30: authentication + encryption, suite 0" in out
    assert "invocation-counter: 19088743" in out
    assert "authentication-tag: 7D825C3BE4A77C3FCC056B6B" in out
    assert "authentication-tag check: ok" in out
    assert "GET-Request-Normal" in out and "cosem-attribute-descriptor: 8/0.0.1.0.0.255/2 (time)" in out
    assert "class-id: 8 (clock)" in out
    # the key is never printed
    assert DEMO_KEYS["ek"] not in out.upper() and DEMO_KEYS["ak"] not in out.upper()


def test_green_book_ciphered_forms_and_response():
    k = keys_of(DEMO_KEYS)
    title = bytes.fromhex(GB_TITLE)
    for hx in (GLO_GET_20, GLO_GET_10):
        rep = D.decode_bytes(bytes.fromhex(hx), k, client_title=title)
        assert rep.ok, rep.errors
        assert summaries(rep)[0].endswith("GET-Request-Normal 8/0.0.1.0.0.255/2 (time)"), summaries(rep)
    assert "nothing to check" in all_text(D.decode_bytes(bytes.fromhex(GLO_GET_20), k, client_title=title))
    rep = D.decode_bytes(bytes.fromhex(GLO_RESPONSE_30), k, server_title=title)
    assert rep.ok, rep.errors
    assert summaries(rep) == ["glo-GET-Response SC 0x30 IC 19088743: GET-Response-Normal double-long-unsigned 12345"]
    rep = D.decode_bytes(bytes.fromhex(GENERAL_GET), k)  # the title travels in the APDU
    assert rep.ok, rep.errors
    assert "system-title: 4D4D4D0000000001" in all_text(rep)
    assert "GET-Request-Normal" in summaries(rep)[0]


def test_ciphered_without_keys_shows_the_header_and_is_not_an_error():
    rep = D.decode_bytes(bytes.fromhex(GLO_GET_30))
    assert rep.ok
    assert summaries(rep) == ["glo-GET-Request SC 0x30 IC 19088743"]
    assert "deciphered: no keys given (--keys FILE)" in all_text(rep)


def test_wrong_key_tag_does_not_verify_exit_1(tmp_path):
    p = tmp_path / "wrong.json"
    p.write_text(json.dumps(WRONG_KEYS))
    rc, out, err = run_cli(["--keys", str(p), "--client-title", GB_TITLE, GLO_GET_30])
    assert rc == 1
    assert "the authentication tag does not verify" in out
    assert "authentication-tag check: FAILED" in out
    # what it could show: the header and the ciphered bytes
    assert "invocation-counter: 19088743" in out and "ciphered-information: 13 bytes 411312FF935A47566827C467BC" in out
    m = re.search(r"stopped at byte (\d+): the authentication tag does not verify", out)
    assert m and int(m.group(1)) == 20  # where the tag starts
    assert "Traceback" not in out + err


def test_wrong_system_title_also_fails_the_tag(demo_keys):
    rc, out, _ = run_cli(["--keys", demo_keys, "--client-title", "0102030405060708", GLO_GET_30])
    assert rc == 1 and "does not verify" in out


def test_unknown_system_title_says_so(demo_keys):
    rc, out, _ = run_cli(["--keys", demo_keys, GLO_GET_30])
    assert rc == 1 and "the client's system title is not known" in out and "--client-title" in out


def test_json_output_is_the_same_tree(demo_keys):
    rc, out, _ = run_cli(["--json", "--keys", demo_keys, "--client-title", GB_TITLE, GLO_GET_30])
    assert rc == 0
    doc = json.loads(out)
    assert doc["ok"] is True and doc["errors"] == []
    top = doc["frames"][0]
    assert top["name"] == "glo-GET-Request" and top["offset"] == 0
    names = {c["name"]: c for c in top["children"]}
    assert names["invocation-counter"]["value"] == 0x01234567
    assert names["authentication-tag check"]["value"] is True
    get = names["deciphered"]["children"][0]
    assert get["name"] == "GET-Request-Normal"
    desc = [c for c in get["children"] if c["name"] == "cosem-attribute-descriptor"][0]
    assert {c["name"]: c.get("value") for c in desc["children"]} == {
        "class-id": 8, "instance-id": "0.0.1.0.0.255", "attribute-id": 2}
    # a stop in JSON
    rc, out, _ = run_cli(["--json", "C001C1000300"])
    doc = json.loads(out)
    assert rc == 1 and doc["ok"] is False
    assert doc["errors"][0]["offset"] == 5 and "truncated" in doc["errors"][0]["reason"]


def test_hdlc_frame_fields():
    # SNRM from the public client to server 1/17 (2-byte address), and the
    # meter's UA with its HDLC parameters (captured from the demo meter)
    snrm = "7EA00802232193BD647E"
    ua = "7EA01F21022373E6C7818012050180060180070400000001080400000001533B7E"
    rep = D.decode_bytes(bytes.fromhex(snrm + ua))
    assert rep.ok, rep.errors
    t = all_text(rep)
    assert "destination address: 0223 (server, upper (logical) 1, lower (physical) 17, 2 bytes)" in t
    assert "source address: 21 (client SAP 16 (public client), 1 byte)" in t
    assert "control: 0x93: SNRM P/F=1" in t and "control: 0x73: UA P/F=1" in t
    assert "FCS: 0x64BD ok" in t and "HCS: 0xC7E6 ok" in t
    assert "max_info_field_length_transmit: 128" in t and "window_size_receive: 1" in t
    assert summaries(rep) == ["SNRM P/F 16 -> 1/17", "UA P/F 1/17 -> 16: max info transmit 128, max info "
                              "receive 128, window transmit 1, window receive 1"]


def test_four_byte_server_address_and_control_names():
    from dlms_micro import crc16

    def frame(addr, ctrl, info=b""):
        body = bytearray(b"\xa0\x00") + addr + bytes([0x21, ctrl])
        if info:
            body[1] = len(body) + 2 + len(info) + 2
            h = crc16.fcs(body, 0, len(body))
            body += bytes([h & 0xFF, h >> 8]) + info
        else:
            body[1] = len(body) + 2
        f = crc16.fcs(body, 0, len(body))
        return b"\x7e" + bytes(body) + bytes([f & 0xFF, f >> 8]) + b"\x7e"

    addr4 = bytes([0x00, 0x02, 0x00, 0x23])  # upper 1, lower 17 in 4 bytes
    for ctrl, name in ((0x93, "SNRM P/F=1"), (0x53, "DISC P/F=1"), (0x31, "RR N(R)=1 P/F=1"),
                       (0x35, "RNR N(R)=1 P/F=1"), (0x13, "UI P/F=1"), (0x54, "I-frame N(S)=2 N(R)=2 P/F=1")):
        rep = D.decode_bytes(frame(addr4, ctrl))
        assert rep.ok, (name, rep.errors)
        t = all_text(rep)
        assert "control: 0x%02X: %s" % (ctrl, name) in t
        assert "server, upper (logical) 1, lower (physical) 17, 4 bytes" in t
    rep = D.decode_bytes(frame(addr4, 0x97, bytes.fromhex("5421" "01")))  # FRMR: control 0x54 undefined
    assert rep.ok, rep.errors
    assert "information: rejected control 0x54, V(S)=0 V(R)=1, W: control field undefined" in all_text(rep)
    rep = D.decode_bytes(frame(addr4, 0x54, b"\xe6\xe6\x00" + bytes.fromhex("C001C100030100010800FF0200")))
    assert rep.ok and summaries(rep) == ["I N(S)=2 N(R)=2 P/F 16 -> 1/17: GET-Request-Normal 3/1.0.1.8.0.255/2 (value)"]


def test_bad_fcs_is_reported_with_its_offset():
    rep = D.decode_bytes(bytes.fromhex("7EA00802232193BD657E"))
    assert rep.errors == [(7, "FCS 0x65BD wrong, 0x64BD computed over the frame")]


def test_xdlms_forms_and_names():
    cases = {
        # GET-Request-Normal with a range_descriptor on the load profile
        "C001C100070100630100FF0201010204020412000809060000010000FF0F02120000"
        "090C07EA0C07FF0A0000FF800000090C07EA0C07FF0B0000FF8000000100":
            "GET-Request-Normal 7/1.0.99.1.0.255/2 (buffer) selector 1",
        "C002C100000001": "GET-Request-Next block 1",
        "C003C102" "0003" "0100010800FF" "0200" "0008" "0000010000FF" "0200":
            "GET-Request-With-List 3/1.0.1.8.0.255/2 (value), 8/0.0.1.0.0.255/2 (time)",
        "C401C10006000030390000": None,  # checked below: 2 bytes left over make a second APDU that fails
        "C402C1000000000100820003010203": "GET-Response-With-Datablock block 1, 3 bytes",
        "C403C1020006000000010104": "GET-Response-With-List 2 results",
        "C101C100080000010000FF0200090C07EA0C070112000000FF8000":
            "SET-Request-Normal 8/0.0.1.0.0.255/2 (time)",
        "C501C100": "SET-Response-Normal success",
        "C301C100460000600300FF01010F00":
            "ACTION-Request-Normal 70/0.0.96.3.0.255/1 (remote_disconnect)",
        "C701C10000": "ACTION-Response-Normal success",
        "C701C10B00": "ACTION-Response-Normal object-unavailable",
        "D80105": "exception-response service-not-allowed, deciphering-error",
        "D8010600000010": "exception-response service-not-allowed, invocation-counter-error 16",
        "E0C100010000" "04C501C100":
            "general-block-transfer block 1 ack 0 (last) streaming, 4 bytes: SET-Response-Normal success",
        "0F0000000100020209060000190900FF1200FF": None,
        "6200": "RLRQ",
        "63038001000": None,
    }
    for hx, want in cases.items():
        if want is None or len(hx) % 2:
            continue
        rep = D.decode_bytes(bytes.fromhex(hx))
        assert rep.ok, (hx, rep.errors)
        assert summaries(rep)[0].startswith(want), (hx, summaries(rep))
    t = all_text(D.decode_bytes(bytes.fromhex(next(iter(cases)))))
    assert "access-selection: range_descriptor" in t
    assert "restricting_object: structure[4] = clock 0.0.1.0.0.255 attribute 2 (time)" in t
    assert "from_value: octet-string[12] 07EA0C07FF0A0000FF800000" in t and "2026-12-07T10:00:00" in t
    rep = D.decode_bytes(bytes.fromhex("C0010100070100630100FF0201020204060000000106000000051200011200000"[:-1]))
    assert rep.ok, rep.errors
    assert "access-selection: entry_descriptor" in all_text(rep) and "from_entry: double-long-unsigned 1" in all_text(rep)
    # the DataNotification names the push setup
    rep = D.decode_bytes(bytes.fromhex("0F00000001000202090600001909" "00FF0600000064"))
    assert rep.ok, rep.errors
    assert summaries(rep) == ["DataNotification invoke-id 1, structure[2]"]
    assert "push setup 0.0.25.9.0.255" in all_text(rep)


def test_values_as_a_tree():
    value = ("0207"
             "020212FF011601"  # not a scaler_unit: long-unsigned, enum
             "02020FFD161E"  # scaler_unit 10^-3 Wh
             "0A03414243"  # visible-string
             "1903E80101FF0A0000FF800000"  # date-time
             "0403A0"  # bit-string of 3 bits
             "17" "3FC00000"  # float32 1.5
             "13" "02020F16" "04" "FF1E0021")  # compact-array {integer, enum} x2
    rep = D.decode_bytes(bytes.fromhex("C401C100" + value))
    assert rep.ok, rep.errors
    t = all_text(rep)
    assert "structure[2] scaler_unit: 10^-3 Wh" in t
    assert "structure[2] scaler_unit" not in t.split("\n")[3]
    assert 'visible-string: "ABC"' in t
    assert "date-time: 1000-01-01T10:00:00 (deviation not specified, status 0x00 ok)" in t
    assert "bit-string: 3 bits 101" in t
    assert "float32: 1.5" in t
    assert "compact-array: 2 elements of structure{integer, enum}" in t


def test_secrets_are_masked_in_set_and_action():
    # SET Association LN secret (attribute 7), ACTION change_HLS_secret (method 2)
    for hx in ("C101C1000F0000280000FF0700090831323334353637 38".replace(" ", ""),
               "C301C1000F0000280000FF0201090831323334353637 38".replace(" ", "")):
        rep = D.decode_bytes(bytes.fromhex(hx))
        assert rep.ok, rep.errors
        t = all_text(rep)
        assert "8 bytes (secret, not shown)" in t and "3132" not in t


def test_dedicated_key_is_not_shown():
    # InitiateRequest with a dedicated key
    rep = D.decode_bytes(bytes.fromhex("010110" "00112233445566778899AABBCCDDEEFF" "0000065F1F0400001E1DFFFF"))
    assert rep.ok, rep.errors
    t = all_text(rep)
    assert "dedicated-key: 16 bytes (not shown)" in t and "00112233" not in t


# ------------------------------------------------------------ real captures


class _Lines(logging.Handler):
    def __init__(self):
        logging.Handler.__init__(self)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    # The demo meter in-process (as tests/interop do), read by gurux-dlms and
    # dlms-cosem over HDLC (TCP) and the wrapper with each association; the
    # port's debug log and gurux's own trace kept.
    pytest.importorskip("gurux_dlms")
    pytest.importorskip("dlms_cosem")
    sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
    import structlog
    from interop_peers import HDLC_TCP, WRAPPER, CosemPeer, GuruxPeer

    from dlms_micro.app import association as asn
    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    handler = _Lines()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("dlms_micro.test_decode")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.propagate = False
    demo = DemoMeter(storage=FileStorage(str(tmp_path_factory.mktemp("decode-meter"))), seed=1)
    svc = ThreadedService(demo, host="127.0.0.1", wrapper_port=0, hdlc_port=0, logger=logger)
    svc.start()
    traces = []
    try:
        from gurux_dlms.enums import Conformance
        from gurux_dlms.objects import GXDLMSClock, GXDLMSProfileGeneric, GXDLMSRegister

        for tr in (HDLC_TCP, WRAPPER):
            for sap in (16, 32, 1):
                p = GuruxPeer(svc, tr, sap=sap)
                try:
                    p.connect()
                    if sap != 16:
                        p.read(GXDLMSRegister("1.0.1.8.0.255"), 3)
                        p.read(GXDLMSRegister("1.0.1.8.0.255"), 2)
                    p.read(GXDLMSClock("0.0.1.0.0.255"), 2)
                    if sap == 32:
                        p.read_object_list()
                        pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
                        p.read(pg, 3)
                        now = datetime.datetime.now()
                        p.read_rows(pg, p.client.readRowsByRange(pg, now - datetime.timedelta(hours=2), now))
                        p.read_rows(pg, p.client.readRowsByEntry(pg, 1, 2))
                        p.read_list([(GXDLMSRegister("1.0.1.8.0.255"), 2), (GXDLMSClock("0.0.1.0.0.255"), 2)])
                    p.release()
                    p.disconnect()
                finally:
                    p.close()
                traces.append((tr, sap, p.trace))
        # general block transfer: the public client reads the object list in GBT blocks
        for role in demo.meter.roles:
            if role.client_sap == 16:
                role.conformance |= asn.CONF_GENERAL_BLOCK_TRANSFER
        from test_gbt_interop import _gurux_settings_with_block_number  # gurux-dlms 1.0.203 needs it for GBT

        p = GuruxPeer(svc, WRAPPER, sap=16, max_pdu=256)
        c = p.client
        c.proposedConformance = (c.proposedConformance | Conformance.GENERAL_BLOCK_TRANSFER) \
            & ~Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
        c.settings.__class__ = _gurux_settings_with_block_number(type(c.settings))
        try:
            p.connect()
            p.read_object_list()
            p.release()
        finally:
            p.close()
        traces.append((WRAPPER, "gbt", p.trace))
        from dlms_cosem.dlms_data import IntegerData

        for tr in (HDLC_TCP, WRAPPER):
            cp = CosemPeer(svc, tr, sap=1)
            try:
                cp.connect()
                cp.associate()
                cp.get(3, "1.0.1.8.0.255", 2)
                cp.action(3, "1.0.2.8.0.255", 1, IntegerData(0).to_bytes())
                cp.release()
            finally:
                cp.close()
    finally:
        svc.stop()
    return {"log": "\n".join(handler.lines), "traces": traces}


def test_real_capture_log_decodes_without_fault_with_names(capture):
    rep = D.decode_log(capture["log"], keys_of(DEMO_KEYS))
    assert rep.ok, rep.errors[:5]
    s = "\n".join(summaries(rep))
    for want in ("SNRM P/F 16 -> 1/17", "AARQ LN LLS, InitiateRequest dlms 6",
                 "AARE LN accepted, InitiateResponse dlms 6, max PDU 1024",
                 "GET-Request-Normal 3/1.0.1.8.0.255/3 (scaler_unit)",
                 "GET-Response-Normal 3/1.0.1.8.0.255/3 (scaler_unit) = structure[2] scaler_unit: 10^0 Wh",
                 "GET-Request-Normal 15/0.0.40.0.0.255/2 (object_list)",
                 "GET-Request-Normal 7/1.0.99.1.0.255/2 (buffer) selector 1",
                 "GET-Request-Normal 7/1.0.99.1.0.255/2 (buffer) selector 2",
                 "GET-Request-With-List 3/1.0.1.8.0.255/2 (value), 8/0.0.1.0.0.255/2 (time)",
                 "GET-Response-With-Datablock block 1", "GET-Request-Next block 1",
                 "AARQ LN-ciphered HLS-GMAC, glo-InitiateRequest SC 0x30",
                 "glo-ACTION-Request SC 0x30", "ACTION-Request-Normal 15/0.0.40.0.0.255/1 (reply_to_HLS_authentication)",
                 "glo-GET-Request SC 0x30", "general-glo-ciphering SC 0x30",
                 "ACTION-Request-Normal 3/1.0.2.8.0.255/1 (reset)",
                 "general-block-transfer block 1", "RLRQ reason normal", "DISC P/F"):
        assert want in s, want
    t = all_text(rep)
    assert "reassembled: value from 4 blocks" in t  # GET datablocks
    assert "reassembled: APDU from" in t and "segments" in t  # HDLC segmentation
    assert "value: array[" in t and "= association-ln 0.0.40.0.0.255" in t
    assert "authentication-tag check: FAILED" not in t
    assert t.count("authentication-tag check: ok") > 20
    assert "calling-authentication-value: charstring, 8 bytes (password, not shown)" in t


def test_every_gurux_message_decodes(capture):
    # gurux-dlms's own record of each direction, as a byte stream
    k = keys_of(DEMO_KEYS)
    for tr, sap, trace in capture["traces"]:
        for d in ("tx", "rx"):
            stream = b"".join(bytes.fromhex(h) for dd, h in trace if dd == d)
            rep = D.decode_bytes(stream, k)
            assert rep.ok, (tr, sap, d, rep.errors[:3])
            assert rep.roots and all(n.summary and "incomplete" not in n.summary for n in rep.roots)


def test_debug_log_lines_carry_a_summary(capture):
    lines = [ln for ln in capture["log"].splitlines() if " rx " in ln or " tx " in ln]
    assert lines
    assert any(re.search(r" rx 7e[0-9a-f]+ \(I N\(S\)=\d N\(R\)=\d P/F 32 -> 1/17: GET-Request-Normal "
                         r"3/1\.0\.1\.8\.0\.255/2 \(value\)\)$", ln) for ln in lines)
    assert any(re.search(r"wrapper \S+ tx 0001[0-9a-f]+ \(wPort 1->16: AARE LN accepted", ln) for ln in lines)
    assert any("(SNRM P/F 16 -> 1/17)" in ln for ln in lines)


def test_log_read_through_the_command(capture, tmp_path, demo_keys):
    log = tmp_path / "serve.log"
    log.write_text(capture["log"])
    rc, out, err = run_cli(["--keys", demo_keys, "--file", str(log)])
    assert rc == 0, err + out[-2000:]
    assert "line " in out and "(client -> meter)" in out and "(meter -> client)" in out
    rc, out, err = run_cli(["--json"], stdin=capture["log"])
    assert rc == 0 and json.loads(out)["ok"] is True


def _first_frames(capture):
    # a few whole messages from the captures: an LLS AARQ, a ciphered GET,
    # an object-list segment, wrapper messages
    out = []
    for tr, sap, trace in capture["traces"]:
        for d, h in trace:
            b = bytes.fromhex(h)
            if (b"\x60" in b[:20] and sap == 32) or (sap == 1 and b"\xc8" in b[8:14]) or b[1:2] == b"\xa8":
                out.append(b)
                break
    return out[:6]


def test_every_prefix_of_a_real_capture_stops_cleanly(capture):
    k = keys_of(DEMO_KEYS)
    frames = _first_frames(capture)
    assert len(frames) >= 4
    title = b"GURUXHES"  # the ciphered GET's sender (interop_peers.GURUX_TITLE)
    for f in frames:
        assert D.decode_bytes(f, k, client_title=title).ok
        for n in range(1, len(f)):
            rep = D.decode_bytes(f[:n], k, client_title=title)
            assert rep.errors, (f.hex(), n)
            where, reason = rep.errors[0]
            assert isinstance(where, int) and 0 <= where <= n, (where, n, reason)
            D.render_text(rep)
            json.dumps(D.to_json(rep))
    # through the command: exit code 1 and the offset
    f = frames[0]
    rc, out, err = run_cli([f[: len(f) // 2].hex()])
    assert rc == 1 and re.search(r"^stopped at byte \d+: ", out, re.M) and not err


def test_every_flipped_byte_of_an_hdlc_frame_is_noticed(capture):
    # (HCS, FCS, flags and the length field; the wrapper has no check)
    hdlc = [f for f in _first_frames(capture) if f[:1] == b"\x7e"]
    assert len(hdlc) >= 2
    for f in hdlc:
        for i in range(len(f)):
            g = bytearray(f)
            g[i] ^= 0x5A
            rep = D.decode_bytes(bytes(g))
            assert rep.errors, (f.hex(), i)


def test_garbled_input_never_a_traceback(tmp_path):
    for args in (["zz"], ["7E"], ["7EA0"], ["0001"], ["000100010001000A60"], ["E6E600"], ["61"], ["DB"],
                 ["C0FF"], ["0F00"], ["7E7E7E7E"], ["--as", "wrapper", "C0010001"], ["--file", str(tmp_path / "none")]):
        rc, out, err = run_cli(args)
        assert rc in (1, 2), args
        assert "Traceback" not in out + err


def test_bad_key_file_is_one_line(tmp_path):
    p = tmp_path / "k.json"
    p.write_text('{"ek": "00"}')
    rc, out, err = run_cli(["--keys", str(p), "C0"])
    assert rc == 2 and err.strip().count("\n") == 0 and "ek: 16 bytes needed" in err


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from([None, "hdlc", "wrapper", "apdu"]))
def test_random_bytes_never_raise(b, kind):
    rep = D.decode_bytes(b, keys_of(DEMO_KEYS), kind, client_title=b"ABCDEFGH", server_title=b"12345678")
    D.render_text(rep)
    json.dumps(D.to_json(rep))
    D.summary(b, kind)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["C0", "C4", "01", "02", "09", "06", "7E", "A0", "E6", "00", "FF", "DB", "08",
                                 "60", "61", "BE", "04", "0E", "82", "13", "C8"]), max_size=80))
def test_random_protocol_bytes_never_raise(parts):
    b = bytes.fromhex("".join(parts))
    for kind in (None, "hdlc", "wrapper", "apdu"):
        rep = D.decode_bytes(b, keys_of(DEMO_KEYS), kind, client_title=b"ABCDEFGH")
        D.render_text(rep)
        json.dumps(D.to_json(rep))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_random_log_text_never_raises(text):
    rep = D.decode_log("x hdlc 1 rx 7ea0\n" + text)
    D.render_text(rep)


# ------------------------------------------------------------------ README


def test_readme_decode_examples_run(tmp_path):
    # Every "$ " line of the README's "Decode a trace" section runs in a
    # shell (dlms-micro being this checkout's CLI) and prints what follows it.
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## Decode a trace", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:console|sh|shell)?\n(.*?)```", section, re.S)
    ran = 0
    for block in blocks:
        cmds = re.split(r"^\$ ", block, flags=re.M)[1:]
        for cmd in cmds:
            line, _, expected = cmd.partition("\n")
            env = dict(os.environ, PY=sys.executable, PYTHONPATH=os.pathsep.join(
                [ROOT, os.path.join(ROOT, "ports", "cpython"), os.environ.get("PYTHONPATH", "")]))
            shell = ("dlms-micro() { \"$PY\" -c 'import sys; from dlms_micro_cpython.cli import main; "
                     "sys.exit(main(sys.argv[1:]))' \"$@\"; }\n" + line)
            r = subprocess.run(["bash", "-c", shell], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                               timeout=60)
            assert r.stderr == "", (line, r.stderr)
            assert r.stdout.rstrip("\n") == expected.rstrip("\n"), (line, r.stdout)
            ran += 1
    assert ran >= 2


# ------------------------------------------------- built with `cryptography`


def _protect(tag, plain, key, title, ic, sc=0x30, general=False):
    # a suite 0 ciphered APDU made independently of the decoder
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ak = bytes.fromhex(DEMO_KEYS["ak"])
    out = AESGCM(key).encrypt(title + ic.to_bytes(4, "big"), plain, bytes([sc]) + ak)
    body = bytes([sc]) + ic.to_bytes(4, "big") + out[:-16] + out[-16:-4]
    head = bytes([tag]) + (bytes([8]) + title if general else b"")
    return head + bytes([len(body)]) + body


def _ber(tag, content):
    return bytes([tag, len(content)]) + content


def test_dedicated_key_from_the_aarq_deciphers_ded_apdus():
    ek = bytes.fromhex(DEMO_KEYS["ek"])
    dk = bytes(range(0x40, 0x50))
    title = b"HESCLI01"
    initiate = bytes.fromhex("010110") + dk + bytes.fromhex("0000065F1F0400001E1DFFFF")
    aarq = _ber(0x60, _ber(0xA1, bytes.fromhex("060760857405080103")) + _ber(0xA6, _ber(0x04, title))
                + bytes.fromhex("8A0207808B0760857405080205") + _ber(0xAC, _ber(0x80, b"K56iVagY"))
                + _ber(0xBE, _ber(0x04, _protect(0x21, initiate, ek, title, 7))))
    ded_get = _protect(0xD0, bytes.fromhex("C001C100030100010800FF0200"), dk, title, 1)
    rep = D.decode_bytes(aarq + ded_get, keys_of(DEMO_KEYS))
    assert rep.ok, rep.errors
    assert summaries(rep)[1] == "ded-GET-Request SC 0x30 IC 1: GET-Request-Normal 3/1.0.1.8.0.255/2 (value)"
    t = all_text(rep)
    assert 'calling-AP-title: 484553434C493031 "HESCLI01" (8 bytes)' in t
    assert "calling-authentication-value: charstring, 8 bytes: 4B35366956616759 (CtoS challenge)" in t
    assert "dedicated-key: 16 bytes (not shown)" in t and dk.hex().upper() not in t
    # without the AARQ there is no dedicated key: said, exit 1
    rep = D.decode_bytes(ded_get, keys_of(DEMO_KEYS), client_title=title)
    assert rep.errors and "no dedicated key" in rep.errors[0][1]


def test_general_glo_with_a_wrong_key_is_stopped_at_the_tag():
    ct = _protect(0xDB, bytes.fromhex("C401C1000600003039"), bytes(16), b"DMI\x00\x00\xbc\x61\x4e", 9, general=True)
    rep = D.decode_bytes(ct, keys_of(DEMO_KEYS))
    assert [r for _, r in rep.errors] == ["the authentication tag does not verify: wrong key (EK/AK), wrong system "
                                          "title or altered bytes; the ciphered information is not shown deciphered"]
    assert rep.errors[0][0] == len(ct) - 12
    rep = D.decode_bytes(ct, {"ek": bytes(16), "ak": bytes.fromhex(DEMO_KEYS["ak"])})
    assert rep.ok and summaries(rep) == ["general-glo-ciphering SC 0x30 IC 9: GET-Response-Normal double-long-unsigned "
                                         "12345"]


def test_set_and_action_in_blocks_are_put_together():
    value = bytes.fromhex("0A0A") + b"0123456789"  # visible-string of 10
    a, b = value[:5], value[5:]
    first = bytes.fromhex("C102C1" "0001" "0000600100FF" "02" "00" "00" "00000001") + bytes([len(a)]) + a
    last = bytes.fromhex("C103C1" "01" "00000002") + bytes([len(b)]) + b
    rep = D.decode_bytes(first + last)
    assert rep.ok, rep.errors
    assert summaries(rep) == ["SET-Request-With-First-Datablock 1/0.0.96.1.0.255/2 (value) block 1",
                              "SET-Request-With-Datablock block 2 (last)"]
    assert 'reassembled: value from 2 blocks, 12 bytes' in all_text(rep) and 'value: visible-string "0123456789"' in all_text(rep)
    # ACTION with-first-pblock, secret parameters (change_HLS_secret) masked in the blocks and the whole
    secret = bytes.fromhex("0908") + b"ABCDEFGH"
    first = bytes.fromhex("C304C1" "000F" "0000280000FF" "02" "00" "00000001") + bytes([4]) + secret[:4]
    last = bytes.fromhex("C306C1" "01" "00000002") + bytes([6]) + secret[4:]
    rep = D.decode_bytes(first + last)
    assert rep.ok, rep.errors
    t = all_text(rep)
    assert "ABCD" not in t and "41424344" not in t and "8 bytes (secret, not shown)" in t
    # the secret read back is masked too
    rep = D.decode_bytes(bytes.fromhex("C001C1000F0000280000FF0700" "C401C100" "0908") + b"ABCDEFGH")
    assert rep.ok and "ABCD" not in all_text(rep) and "4142" not in all_text(rep)


def test_date_time_deviation_is_utc_minus_local():
    # Blue Book: deviation -60 is CET (UTC+1); clock status bits named
    rep = D.decode_bytes(bytes.fromhex("C401C100" "1907EA070103" "0A1E00FF" "FFC4" "81"))
    assert rep.ok, rep.errors
    assert "2026-07-01T10:30:00+01:00 (Wed, status 0x81 invalid-value,daylight-saving-active)" in all_text(rep)


def test_summary_of_reads_that_split_frames():
    # a serial line delivers frames in pieces: each read gets a sensible line
    f = bytes.fromhex("7EA01A022341549311E6E600C001C100030100010800FF020032687E")
    assert D.summary(f, "hdlc") == "I N(S)=2 N(R)=2 P/F 32 -> 1/17: GET-Request-Normal 3/1.0.1.8.0.255/2 (value)"
    assert D.summary(f[:14], "serial") == ("I N(S)=2 N(R)=2 P/F 32 -> 1/17 [the frame goes on in the next read: its "
                                           "length field says 28 bytes, 14 are there]")
    assert D.summary(f[14:], "serial") == "part of a frame, 14 bytes"
    assert D.summary(bytes.fromhex("000100010010000DC001C100030100010800FF0200"), "wrapper") == \
        "wPort 1->16: GET-Request-Normal 3/1.0.1.8.0.255/2 (value)"
