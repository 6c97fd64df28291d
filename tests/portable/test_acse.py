# ACSE (AARQ/AARE, RLRQ/RLRE) and the xDLMS Initiate PDUs, byte for byte.
# Runs under pytest and MicroPython.
#
# Vectors: GB_* are the Green Book's AARQ/AARE encoding examples (LN
# context, no ciphering), widely quoted in public docs; METER_* a real
# meter's LLS trace published in a public firmware repository's comments
# (right and wrong password); the rest are built here field by field.

from dlms_micro.app import acse
from dlms_micro.errors import DecodeError, EncodeError
from support import raises, unhex

IREQ = "01 00 00 00 06 5F 1F 04 00 00 7E 1F 04 B0"  # conformance 007E1F, 1200
CTX_LN = "A1 09 06 07 60 85 74 05 08 01 01"
GB_AARQ = "60 1D" + CTX_LN + "BE 10 04 0E" + IREQ
GB_AARE = (
    "61 29" + CTX_LN + "A2 03 02 01 00 A3 05 A1 03 02 01 00"
    "BE 10 04 0E 08 00 06 5F 1F 04 00 00 50 1F 01 F4 00 07"
)
# LLS, password "12345678"
GB_AARQ_LLS = (
    "60 36" + CTX_LN + "8A 02 07 80 8B 07 60 85 74 05 08 02 01"
    "AC 0A 80 08 31 32 33 34 35 36 37 38 BE 10 04 0E" + IREQ
)
# HLS GMAC: CtoS "K56iVagY"; the AARE accepts with authentication-required
# and carries the StoC "P6wRJ21F"
AARQ_HLS = (
    "60 36" + CTX_LN + "8A 02 07 80 8B 07 60 85 74 05 08 02 05"
    "AC 0A 80 08 4B 35 36 69 56 61 67 59 BE 10 04 0E" + IREQ
)
AARE_HLS = (
    "61 42" + CTX_LN + "A2 03 02 01 00 A3 05 A1 03 02 01 0E"
    "88 02 07 80 89 07 60 85 74 05 08 02 05 AA 0A 80 08 50 36 77 52 4A 32 31 46"
    "BE 10 04 0E 08 00 06 5F 1F 04 00 00 50 1F 01 F4 00 07"
)
METER_AARQ = (
    "60 36" + CTX_LN + "8A 02 07 80 8B 07 60 85 74 05 08 02 01"
    "AC 0A 80 08 78 52 77 50 62 45 78 %s"
    "BE 10 04 0E 01 00 00 00 06 5F 1F 04 00 00 7E 1F 01 00"
)
METER_AARE = (
    "61 29" + CTX_LN + "A2 03 02 01 %s A3 05 A1 03 02 01 %s"
    "BE 10 04 0E 08 00 06 5F 1F 04 00 00 18 1D 01 80 00 07"
)
SYSTITLE = "4D 4D 4D 00 00 BC 61 4E"
# LN ciphered context, calling-AP-title, HLS-GMAC, glo-initiate-request
# (SC 0x30, IC 1, 31 bytes of ciphertext + 12-byte tag; made-up bytes)
GLO = "21 30 30 00 00 00 01" + " 11" * 31 + " 22" * 12
AARQ_CIPHERED = (
    "60 66 A1 09 06 07 60 85 74 05 08 01 03 A6 0A 04 08" + SYSTITLE
    + "8A 02 07 80 8B 07 60 85 74 05 08 02 05 AC 0A 80 08 4B 35 36 69 56 61 67 59"
    "BE 34 04 32" + GLO
)


def parsed(hexstr):
    data = unhex(hexstr)
    a = acse.Aarq()
    assert a.parse(data, 0, len(data)) == len(data)
    return a


def decided(a, context=1, mechanism=0, secret=b"", conformance=0x00501F, max_pdu=500):
    return acse.decide(acse.Outcome(), a, context, mechanism, secret, conformance, max_pdu)


def aare_for(a, context=1, mechanism=0, secret=b"", conformance=0x00501F, max_pdu=500):
    out = decided(a, context, mechanism, secret, conformance, max_pdu)
    buf = bytearray(300)
    n = acse.Aare().from_outcome(out, context, max_pdu).encode(buf, 0)
    return bytes(buf[:n])


def bad(hexstr):
    data = unhex(hexstr)
    return raises(DecodeError, acse.Aarq().parse, data, 0, len(data))


# --- AARQ parsing -----------------------------------------------------------


def test_green_book_aarq_without_security():
    a = parsed(GB_AARQ)
    assert a.context == acse.CONTEXT_LN
    assert a.mechanism == -1 and a.auth_value == -1 and a.calling_ap_title == -1
    assert a.protocol_version_ok == 1 and a.acse_authentication == 0
    assert a.ui_tag == acse.INITIATE_REQUEST and a.ui == 17 and a.ui_len == 14
    ini = a.initiate
    assert ini.valid == 1 and ini.dedicated_key == -1
    assert ini.response_allowed == 1 and ini.qos_present == 0
    assert ini.dlms_version == 6 and ini.conformance == 0x007E1F and ini.max_pdu == 1200
    assert not a.ciphered()


def test_green_book_aarq_with_lls_password():
    data = unhex(GB_AARQ_LLS)
    a = parsed(GB_AARQ_LLS)
    assert a.acse_authentication == 1 and a.mechanism == acse.MECH_LLS
    assert a.auth_tag == 0x80 and a.auth_len == 8
    assert data[a.auth_value : a.auth_value + a.auth_len] == b"12345678"
    assert a.initiate.valid and a.initiate.max_pdu == 1200


def test_aarq_with_hls_challenge():
    data = unhex(AARQ_HLS)
    a = parsed(AARQ_HLS)
    assert a.mechanism == acse.MECH_HLS_GMAC
    assert data[a.auth_value : a.auth_value + a.auth_len] == b"K56iVagY"


def test_ciphered_aarq_locates_system_title_and_glo_initiate_request():
    data = unhex(AARQ_CIPHERED)
    a = parsed(AARQ_CIPHERED)
    assert a.context == acse.CONTEXT_LN_CIPHERED
    assert data[a.calling_ap_title : a.calling_ap_title + a.calling_ap_title_len] == unhex(SYSTITLE)
    assert a.ui_tag == acse.GLO_INITIATE_REQUEST and a.ciphered()
    assert data[a.ui : a.ui + a.ui_len] == unhex(GLO)
    assert not a.initiate.valid  # the security layer parses the plaintext
    # ... which it does into the same object, then decides as for plain
    plain = unhex(IREQ)
    a.initiate.parse(plain, 0, len(plain))
    out = decided(a, context=3, mechanism=5)
    assert out.accepted() and out.hls == 1


def test_parse_at_an_offset_inside_a_larger_buffer():
    data = b"\xff\xff\xff" + unhex(GB_AARQ_LLS) + b"\xee"
    a = acse.Aarq()
    assert a.parse(data, 3, len(data) - 1) == len(data) - 1
    assert data[a.auth_value : a.auth_value + 8] == b"12345678"
    assert a.start == 3 and a.buf is data


def test_parser_is_reusable_and_forgets_the_previous_request():
    a = acse.Aarq()
    d1 = unhex(GB_AARQ_LLS)
    a.parse(d1, 0, len(d1))
    d2 = unhex(GB_AARQ)
    a.parse(d2, 0, len(d2))
    assert a.mechanism == -1 and a.auth_value == -1 and a.acse_authentication == 0


def test_long_form_lengths_are_read():
    # 0x81 and 0x82 forms on the AARQ, a field and the user-information
    a = parsed("60 82 00 21 A1 81 09 06 07 60 85 74 05 08 01 01 BE 82 00 11 04 81 0E" + IREQ)
    assert a.context == 1 and a.initiate.valid and a.ui_len == 14


def test_unknown_and_unused_fields_are_skipped_by_length():
    a = parsed(
        "60 35 80 02 07 80 A2 04 06 02 2A 03 A3 03 02 01 05 9D 02 AB CD"
        " 1F 81 01 01 FF" + CTX_LN + "BE 10 04 0E" + IREQ
    )
    assert a.context == 1 and a.initiate.valid and a.protocol_version_ok == 1
    assert a.called_ap_title >= 0 and a.called_ap_title_len == 2


def test_protocol_version_without_version1_is_recorded():
    a = parsed("60 21 80 02 07 00" + CTX_LN + "BE 10 04 0E" + IREQ)
    assert a.protocol_version_ok == 0


def test_foreign_oids_are_unrecognised_not_malformed():
    a = parsed("60 26 A1 09 06 07 60 85 74 05 08 01 07 8B 07 60 85 74 05 08 03 01 BE 10 04 0E" + IREQ)
    assert a.context == 7  # a DLMS UA context arc we do not know: still an arc
    assert a.mechanism == acse.UNRECOGNISED
    a = parsed("60 1E A1 0A 06 08 60 85 74 05 08 01 81 01 BE 10 04 0E" + IREQ)
    assert a.context == acse.UNRECOGNISED  # multi-byte last arc
    a = parsed("60 1A A1 06 06 04 2A 03 04 05 BE 10 04 0E" + IREQ)
    assert a.context == acse.UNRECOGNISED


def test_user_information_with_another_apdu_is_located_not_parsed():
    a = parsed("60 13" + CTX_LN + "BE 06 04 04 C0 01 02 03")
    assert a.ui_tag == 0xC0 and a.ui_len == 4 and not a.initiate.valid and not a.ciphered()


def test_malformed_aarqs_raise_decode_error():
    assert "tag 0x60" in str(bad("61 00"))
    bad("")
    bad("60")
    assert "runs past" in str(bad("60 1E" + CTX_LN + "BE 10 04 0E" + IREQ))
    assert "after its end" in str(bad("60 1C" + CTX_LN + "BE 10 04 0E" + IREQ))
    assert "length form" in str(bad("60 80" + CTX_LN + "00 00"))  # indefinite
    assert "length form" in str(bad("60 83 00 00 0B" + CTX_LN))
    bad("60 0B A1 09 06 07 60 85 74 05 08 01")  # truncated
    assert "stray" in str(bad("60 0C A1 0A 06 07 60 85 74 05 08 01 01 00"))
    assert "expected tag 0x06" in str(bad("60 0B A1 09 04 07 60 85 74 05 08 01 01"))
    assert "application-context-name" in str(bad("60 12 BE 10 04 0E" + IREQ))
    bad("60 0F" + CTX_LN + "8A 02 08 80")  # unused bits > 7
    bad("60 0D" + CTX_LN + "8A 00")
    bad("60 0D" + CTX_LN + "AC 00")
    bad("60 0F" + CTX_LN + "BE 02 04 00")  # empty association-information
    bad("60 10" + CTX_LN + "BE 03 05 01 01")  # not an octet string
    bad("60 12" + CTX_LN + "BE 05 04 04 01 00 00 00")  # truncated InitiateRequest
    bad("60 10" + CTX_LN + "BF 80 80")  # high tag number never ends


# --- InitiateRequest ----------------------------------------------------------


def ireq(hexstr):
    data = unhex(hexstr)
    r = acse.InitiateRequest()
    assert r.parse(data, 0, len(data)) == len(data)
    return r, data


def test_initiate_request_optional_and_default_fields():
    r, data = ireq("01 01 10" + " AB" * 16 + "01 00 01 F6 06 5F 1F 04 00 00 10 1D FF FF")
    assert r.dedicated_key_len == 16 and data[r.dedicated_key] == 0xAB and r.dedicated_key == 3
    assert r.response_allowed == 0
    assert r.qos_present == 1 and r.qos == -10
    assert r.conformance == 0x00101D and r.max_pdu == 0xFFFF
    r, _ = ireq("01 00 01 01 00 06 5F 1F 04 00 00 10 1D 00 00")
    assert r.response_allowed == 1 and r.max_pdu == 0


def test_initiate_request_unused_conformance_bits_are_ignored():
    r, _ = ireq("01 00 00 00 06 5F 1F 04 03 FF FF FF 04 00")
    assert r.conformance == 0xFFFFF8


def test_malformed_initiate_requests():
    for h in (
        "",
        "08 00 00 00 06 5F 1F 04 00 00 10 1D 04 00",  # wrong tag
        "01 02 00 00 06 5F 1F 04 00 00 10 1D 04 00",  # bad optional flag
        "01 00 02 00 06 5F 1F 04 00 00 10 1D 04 00",
        "01 00 00 05 06 5F 1F 04 00 00 10 1D 04 00",
        "01 00 00 00 06 5F 1E 04 00 00 10 1D 04 00",  # wrong conformance tag
        "01 00 00 00 06 5F 1F 03 00 00 10 1D 04 00",
        "01 00 00 00 06 5F 1F 04 08 00 10 1D 04 00",
        "01 00 00 00 06 5F 1F 04 00 00 10 1D 04",  # truncated
        "01 00 00 00 06 5F 1F 04 00 00 10 1D 04 00 00",  # trailing byte
        "01 01 10 AB AB",  # dedicated key longer than the input
        "01 01",
        "01 00 01",
    ):
        data = unhex(h)
        raises(DecodeError, acse.InitiateRequest().parse, data, 0, len(data))


# --- decisions ----------------------------------------------------------------


def test_accept_negotiates_conformance_and_pdu_sizes():
    out = decided(parsed(GB_AARQ), conformance=0x00501F, max_pdu=500)
    assert out.accepted() and out.diagnostic == 0 and out.error == -1
    assert out.conformance == 0x00501F & 0x007E1F
    assert out.client_max_pdu == 1200 and out.tx_max_pdu == 500
    assert out.respond == 1 and out.hls == 0


def test_green_book_aare_is_reproduced_byte_for_byte():
    assert aare_for(parsed(GB_AARQ)) == unhex(GB_AARE)


def test_meter_trace_lls_right_and_wrong_password():
    right = parsed(METER_AARQ % "46")
    assert aare_for(right, mechanism=1, secret=b"xRwPbExF", conformance=0x00181D, max_pdu=0x180) == unhex(
        METER_AARE % ("00", "00")
    )
    wrong = parsed(METER_AARQ % "47")
    out = decided(wrong, mechanism=1, secret=b"xRwPbExF", conformance=0x00181D, max_pdu=0x180)
    assert (out.result, out.source, out.diagnostic) == (1, 1, 13)
    # the ACSE refuses; the InitiateRequest itself was fine, so the
    # InitiateResponse still rides along, as this meter sends it
    assert aare_for(wrong, mechanism=1, secret=b"xRwPbExF", conformance=0x00181D, max_pdu=0x180) == unhex(
        METER_AARE % ("01", "0D")
    )


def test_hls_is_accepted_pending_with_authentication_required_and_stoc():
    a = parsed(AARQ_HLS)
    out = decided(a, mechanism=5)
    assert out.accepted() and out.hls == 1 and out.diagnostic == acse.DIAG_AUTHENTICATION_REQUIRED
    aare = acse.Aare().from_outcome(out, 1, 500)
    aare.mechanism = 5
    aare.stoc = b"P6wRJ21F"
    aare.stoc_len = 8
    buf = bytearray(100)
    n = aare.encode(buf, 0)
    assert bytes(buf[:n]) == unhex(AARE_HLS)


def hls_aarq(auth):
    # an HLS-GMAC AARQ with calling-authentication-value `auth` (hex)
    body = CTX_LN + "8A 02 07 80 8B 07 60 85 74 05 08 02 05" + auth + "BE 10 04 0E" + IREQ
    return parsed("60 %02X" % len(unhex(body)) + body)


def test_hls_challenge_missing_or_out_of_bounds_fails_authentication():
    for auth in ("", "AC 09 80 07" + " 31" * 7, "AC 43 80 41" + " 31" * 65):
        out = decided(hls_aarq(auth), mechanism=5)
        assert (out.result, out.diagnostic) == (1, acse.DIAG_AUTHENTICATION_FAILURE)
    assert decided(hls_aarq("AC 0A 80 08" + " 31" * 8), mechanism=5).accepted()
    assert decided(hls_aarq("AC 42 80 40" + " 31" * 64), mechanism=5).accepted()


def test_lls_missing_or_wrong_password_is_authentication_failure():
    a = parsed(GB_AARQ_LLS)
    assert decided(a, mechanism=1, secret=b"12345678").accepted()
    for secret in (b"12345679", b"1234567", b"123456789", b""):
        out = decided(a, mechanism=1, secret=secret)
        assert (out.result, out.source, out.diagnostic) == (1, 1, 13)
    a = parsed("60 2A" + CTX_LN + "8A 02 07 80 8B 07 60 85 74 05 08 02 01 BE 10 04 0E" + IREQ)
    assert decided(a, mechanism=1, secret=b"x").diagnostic == 13
    # an LLS role whose secret was never set accepts no password, not even ""
    a = parsed("60 2E" + CTX_LN + "8A 02 07 80 8B 07 60 85 74 05 08 02 01 AC 02 80 00 BE 10 04 0E" + IREQ)
    assert a.auth_len == 0 and decided(a, mechanism=1, secret=b"").diagnostic == 13


def test_mechanism_mismatch():
    # none offered to a role that needs LLS: the name is required
    out = decided(parsed(GB_AARQ), mechanism=1, secret=b"12345678")
    assert (out.result, out.diagnostic) == (1, acse.DIAG_MECHANISM_REQUIRED)
    # LLS offered to a public (no-security) role, HLS to an LLS role,
    # and an unknown OID: not recognised
    assert decided(parsed(GB_AARQ_LLS), mechanism=0).diagnostic == acse.DIAG_MECHANISM_NOT_RECOGNISED
    assert decided(parsed(AARQ_HLS), mechanism=1, secret=b"K56iVagY").diagnostic == 11
    a = parsed("60 26" + CTX_LN + "8B 07 60 85 74 05 08 03 01 BE 10 04 0E" + IREQ)
    assert decided(a).diagnostic == 11
    # mechanism 0 named explicitly is the role's "none"
    a = parsed("60 26" + CTX_LN + "8B 07 60 85 74 05 08 02 00 BE 10 04 0E" + IREQ)
    assert decided(a).accepted()


def test_wrong_context_is_application_context_name_not_supported():
    sn = parsed("60 1D A1 09 06 07 60 85 74 05 08 01 02 BE 10 04 0E" + IREQ)
    out = decided(sn)
    assert (out.result, out.source, out.diagnostic) == (1, 1, 2)
    # a ciphered context on a role without ciphering; and the other way
    assert decided(parsed(AARQ_CIPHERED), context=1, mechanism=5).diagnostic == 2
    assert decided(parsed(GB_AARQ), context=3).diagnostic == 2
    # context is checked before the mechanism
    assert decided(sn, mechanism=1, secret=b"x").diagnostic == 2


def test_no_common_acse_version_is_a_provider_rejection():
    a = parsed("60 21 80 02 07 00" + CTX_LN + "BE 10 04 0E" + IREQ)
    out = decided(a)
    assert (out.result, out.source, out.diagnostic) == (1, acse.SOURCE_PROVIDER, 2)
    assert aare_for(a)[18:25] == unhex("A3 05 A2 03 02 01 02")


def aarq_with(ini):
    n = len(unhex(ini))
    return parsed("60 %02X" % (11 + 4 + n) + CTX_LN + "BE %02X 04 %02X" % (n + 2, n) + ini)


def test_refused_initiate_request_gets_confirmed_service_error():
    cases = (
        ("01 00 00 00 05 5F 1F 04 00 00 7E 1F 04 B0", acse.INIT_DLMS_VERSION_TOO_LOW),
        ("01 00 00 00 06 5F 1F 04 00 FF A0 E0 04 B0", acse.INIT_INCOMPATIBLE_CONFORMANCE),
        ("01 00 00 00 06 5F 1F 04 00 00 7E 1F 00 0B", acse.INIT_PDU_SIZE_TOO_SHORT),
    )
    for ini, code in cases:
        a = aarq_with(ini)
        out = decided(a)
        assert (out.result, out.source, out.diagnostic, out.error) == (1, 1, 1, code)
        got = aare_for(a)
        assert got == unhex("61 1F" + CTX_LN + "A2 03 02 01 01 A3 05 A1 03 02 01 01 BE 06 04 04 0E 01 06 %02X" % code)


def test_pdu_size_limits():
    out = decided(aarq_with("01 00 00 00 06 5F 1F 04 00 00 7E 1F 00 0C"))
    assert out.accepted() and out.client_max_pdu == 12 and out.tx_max_pdu == 12
    out = decided(aarq_with("01 00 00 00 06 5F 1F 04 00 00 7E 1F 00 00"), max_pdu=1024)
    assert out.accepted() and out.client_max_pdu == 0xFFFF and out.tx_max_pdu == 1024  # 0: no limit
    out = decided(aarq_with("01 00 00 00 06 5F 1F 04 00 00 7E 1F FF FF"), max_pdu=2048)
    assert out.accepted() and out.client_max_pdu == 0xFFFF and out.tx_max_pdu == 2048


def test_newer_dlms_version_is_answered_with_six():
    out = decided(aarq_with("01 00 00 00 07 5F 1F 04 00 00 7E 1F 04 B0"))
    assert out.accepted() and out.dlms_version == 6


def test_response_not_allowed_means_no_aare():
    out = decided(aarq_with("01 00 01 00 00 06 5F 1F 04 00 00 7E 1F 04 B0"))
    assert out.accepted() and out.respond == 0


def test_acse_reason_wins_the_diagnostic_and_initiate_error_the_user_information():
    a = parsed("60 1D A1 09 06 07 60 85 74 05 08 01 02 BE 10 04 0E 01 00 00 00 05 5F 1F 04 00 00 7E 1F 04 B0")
    out = decided(a)
    assert (out.diagnostic, out.error) == (2, acse.INIT_DLMS_VERSION_TOO_LOW)
    assert aare_for(a)[-8:] == unhex("BE 06 04 04 0E 01 06 01")


def test_ciphered_initiate_not_deciphered_is_refused_as_other():
    a = parsed(AARQ_CIPHERED)
    out = decided(a, context=3, mechanism=5)
    assert (out.result, out.diagnostic, out.error) == (1, 1, acse.INIT_OTHER)


# --- AARE encoding ------------------------------------------------------------


def test_aare_with_system_title_written_at_an_offset():
    out = decided(parsed(AARQ_HLS), mechanism=5)
    aare = acse.Aare().from_outcome(out, 3, 500)
    aare.ap_title = b"xx" + unhex(SYSTITLE)
    aare.ap_title_start = 2
    aare.ap_title_len = 8
    aare.mechanism = 5
    aare.stoc = b"P6wRJ21F"
    aare.stoc_len = 8
    buf = bytearray(120)
    n = aare.encode(buf, 10)
    want = unhex(
        "61 4E A1 09 06 07 60 85 74 05 08 01 03 A2 03 02 01 00 A3 05 A1 03 02 01 0E A4 0A 04 08"
        + SYSTITLE
        + "88 02 07 80 89 07 60 85 74 05 08 02 05 AA 0A 80 08 50 36 77 52 4A 32 31 46"
        "BE 10 04 0E 08 00 06 5F 1F 04 00 00 50 1F 01 F4 00 07"
    )
    assert n == 10 + len(want) and bytes(buf[10:n]) == want
    assert buf[:10] == bytearray(10)


def test_aare_with_ciphered_initiate_response_and_long_lengths():
    aare = acse.Aare()
    aare.context = 3
    ini = aare.initiate
    ini.kind = acse.UI_CIPHERED
    ini.ciphered = bytearray(b"\x28\x81\x90" + bytes(range(144)))
    ini.ciphered_len = 147
    buf = bytearray(200)
    n = aare.encode(buf, 0)
    assert buf[0:3] == unhex("61 81 B0") and n == 3 + 0xB0
    assert buf[26:32] == unhex("BE 81 96 04 81 93")
    assert buf[32:n] == ini.ciphered
    # 64-byte StoC and a 300-byte ciphered response: 0x82 forms
    aare.mechanism = 7
    aare.stoc = bytes(64)
    aare.stoc_len = 64
    ini.ciphered = bytes(300)
    ini.ciphered_len = 300
    buf = bytearray(500)
    n = aare.encode(buf, 0)
    assert buf[0:2] == unhex("61 82") and (buf[2] << 8 | buf[3]) == n - 4
    a = n - 300 - 8
    assert buf[a : a + 8] == unhex("BE 82 01 30 04 82 01 2C")


def test_aare_with_negotiated_quality_of_service():
    aare = acse.Aare()
    ini = aare.initiate
    ini.kind = acse.UI_INITIATE_RESPONSE
    ini.qos = 3
    ini.conformance = 0x00101D
    ini.max_pdu = 0x0400
    buf = bytearray(60)
    n = aare.encode(buf, 0)
    assert bytes(buf[n - 19 : n]) == unhex("BE 11 04 0F 08 01 03 06 5F 1F 04 00 00 10 1D 04 00 00 07")


def test_aare_that_does_not_fit_raises_encode_error():
    aare = acse.Aare().from_outcome(decided(parsed(GB_AARQ)), 1, 500)
    buf = bytearray(43)
    assert aare.encode(buf, 0) == 43
    raises(EncodeError, aare.encode, buf, 1)
    raises(EncodeError, aare.encode, bytearray(100), 0, 42)
    assert aare.encode(bytearray(100), 57, 100) == 100


def test_aare_refuses_values_it_cannot_encode():
    for field, value in (("result", 200), ("diagnostic", -1), ("source", 3), ("context", 300), ("mechanism", 128)):
        aare = acse.Aare()
        setattr(aare, field, value)
        raises(EncodeError, aare.encode, bytearray(100), 0)
    aare = acse.Aare()
    aare.stoc = b"abc"
    aare.stoc_len = 4
    raises(EncodeError, aare.encode, bytearray(100), 0)
    aare = acse.Aare()
    aare.initiate.kind = acse.UI_CIPHERED
    raises(EncodeError, aare.encode, bytearray(100), 0)
    aare = acse.Aare()
    aare.initiate.kind = acse.UI_INITIATE_RESPONSE
    aare.initiate.max_pdu = 0x10000
    raises(EncodeError, aare.encode, bytearray(100), 0)


# --- release ------------------------------------------------------------------


def rlrq(hexstr):
    data = unhex(hexstr)
    r = acse.Rlrq()
    assert r.parse(data, 0, len(data)) == len(data)
    return r


def test_rlrq_reason_and_user_information():
    assert rlrq("62 00").reason == -1
    r = rlrq("62 03 80 01 00")
    assert r.reason == acse.RELEASE_NORMAL and r.ui == -1
    r = rlrq("62 15 80 01 00 BE 10 04 0E" + IREQ)
    assert r.initiate.valid and r.initiate.max_pdu == 1200
    r = rlrq("62 37 80 01 01 BE 32 04 30 21 2E 30 00 00 00 02" + " 33" * 41)
    assert r.reason == acse.RELEASE_URGENT and r.ui_tag == acse.GLO_INITIATE_REQUEST and r.ui_len == 48


def test_malformed_rlrqs():
    for h in ("", "63 00", "62", "62 01", "62 03 80 02 00", "62 04 80 02 00 00", "62 05 BE 03 04 00 00", "62 03 80 01"):
        data = unhex(h)
        raises(DecodeError, acse.Rlrq().parse, data, 0, len(data))


def test_rlre_encodings():
    buf = bytearray(40)
    assert acse.build_rlre(buf, 0) == 5 and buf[:5] == unhex("63 03 80 01 00")
    assert acse.build_rlre(buf, 2, None, -1) == 4 and buf[2:4] == unhex("63 00")
    ini = acse.InitiateResponseOut()
    ini.kind = acse.UI_INITIATE_RESPONSE
    ini.conformance = 0x00501F
    ini.max_pdu = 500
    n = acse.build_rlre(buf, 0, None, acse.RELEASE_NORMAL, ini)
    assert bytes(buf[:n]) == unhex("63 15 80 01 00 BE 10 04 0E 08 00 06 5F 1F 04 00 00 50 1F 01 F4 00 07")
    raises(EncodeError, acse.build_rlre, buf, 0, 22, 0, ini)
    raises(EncodeError, acse.build_rlre, buf, 0, None, 200)


# --- allocation ----------------------------------------------------------------


def test_aarq_to_aare_allocates_nothing_on_micropython():
    try:
        import micropython  # noqa: F401
        import gc
    except ImportError:
        return  # CPython: tests/cpython/test_acse_hypothesis.py uses tracemalloc
    data = unhex(GB_AARQ_LLS)
    a = acse.Aarq()
    out = acse.Outcome()
    aare = acse.Aare()
    buf = bytearray(128)
    secret = b"12345678"

    ciph = unhex(AARQ_CIPHERED)
    ded = unhex("01 01 10" + " AB" * 16 + "01 00 01 F6 06 5F 1F 04 00 00 10 1D FF FF")
    rel = unhex("62 15 80 01 00 BE 10 04 0E" + IREQ)
    r = acse.Rlrq()

    def once():
        a.parse(data, 0, len(data))
        acse.decide(out, a, 1, 1, secret, 0x00501F, 500)
        aare.reset()
        aare.from_outcome(out, 1, 500)
        aare.encode(buf, 0)
        a.parse(ciph, 0, len(ciph))
        a.initiate.parse(ded, 0, len(ded))
        acse.decide(out, a, 3, 5, secret, 0x00501F, 500)
        aare.from_outcome(out, 3, 500)
        aare.ap_title = ciph
        aare.ap_title_start = a.calling_ap_title
        aare.ap_title_len = 8
        aare.mechanism = 5
        aare.stoc = ciph
        aare.stoc_start = a.auth_value
        aare.stoc_len = a.auth_len
        aare.encode(buf, 0)
        r.parse(rel, 0, len(rel))
        acse.build_rlre(buf, 0, None, 0, aare.initiate)

    once()
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(3):
        once()
    used = gc.mem_alloc() - before
    gc.enable()
    assert used == 0, used


def test_log_lines_name_diagnostics_and_initiate_errors():
    assert acse.diagnostic_name(13) == "authentication-failure"
    assert acse.diagnostic_name(99) == "diagnostic 99"
    assert acse.initiate_error_name(-1) == "no initiate error"
    assert acse.initiate_error_name(2) == "incompatible-conformance"
    assert acse.initiate_error_name(9) == "initiate error 9"
