# HLS mechanism 6 (HLS-SHA256) of security.suite12: the meter's check of the
# client's f(StoC) and its f(CtoS), with the Green Book's formulas
# (SHA-256(secret || ST-C || ST-S || StoC || CtoS), and the reverse for the
# meter), and what it refuses. Runs under pytest and MicroPython (mechanism
# 7, ECDSA, is in tests/portable_ecc: its big ints need a larger heap).

from dlms_micro.security import sha2, suite12

ST_C = b"GURUXHES"
ST_S = b"DMI\x00\x00\xbc\x61\x4e"
STOC = bytes(range(32))
CTOS = bytes(range(100, 116))
SECRET = b"hls-sha256-secret"


def reply(answer, secret=SECRET, title=ST_C, mech=6):
    return suite12.hls_reply(mech, answer, secret, None, title, ST_S, STOC, CTOS, 1)


def refused(answer, why, **kw):
    try:
        reply(answer, **kw)
    except suite12.HlsError as ex:
        assert why in str(ex), str(ex)
        assert SECRET.decode() not in str(ex)
        return
    raise AssertionError("accepted")


def test_sha256_f_stoc_accepted_and_f_ctos_answered():
    f_stoc = sha2.digest("sha256", SECRET + ST_C + ST_S + STOC + CTOS)
    assert reply(f_stoc) == sha2.digest("sha256", SECRET + ST_S + ST_C + CTOS + STOC)


def test_sha256_wrong_secret_refused():
    refused(sha2.digest("sha256", b"x" + ST_C + ST_S + STOC + CTOS), "does not match")


def test_sha256_titles_swapped_refused():
    refused(sha2.digest("sha256", SECRET + ST_S + ST_C + STOC + CTOS), "does not match")


def test_sha256_truncated_refused():
    refused(sha2.digest("sha256", SECRET + ST_C + ST_S + STOC + CTOS)[:31], "of 31 bytes")


def test_sha256_without_client_title_refused():
    refused(bytes(32), "no client system title", title=None)


def test_sha256_without_secret_refused():
    refused(bytes(32), "without an HLS secret", secret=b"")


def test_ecdsa_without_signing_key_refused():
    refused(bytes(64), "without a signing key", mech=7)


def test_other_mechanism_refused():
    refused(bytes(16), "not served here", mech=5)
