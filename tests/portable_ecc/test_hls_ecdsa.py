# HLS mechanism 7 (HLS-ECDSA, security suite 1, P-256) of security.suite12
# on MicroPython's pure curve code: a client's f(StoC) (its signature of
# ST-C || ST-S || StoC || CtoS) is checked with the public key the meter
# holds for its system title, and the meter answers with its signature of
# ST-S || ST-C || CtoS || StoC. A forged signature, an unknown title, a
# point off the curve and a P-384-sized answer are refused.

from dlms_micro.security import ecc, suite12

ST_C = b"GURUXHES"
ST_S = b"DMI\x00\x00\xbc\x61\x4e"
STOC = bytes(range(32))
CTOS = bytes(range(100, 116))
# RFC 6979 A.2.5's key as the client's, a small one as the meter's
CLIENT_D = bytes.fromhex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
CLIENT_PUB = bytes.fromhex(
    "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
    "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"
)
SERVER_D = bytes(31) + b"\x2a"
# precomputed (RFC 6979 nonces make the signatures deterministic) so that one
# test holds one verification and one signature: the wasm runner collects no
# garbage inside a test
SERVER_PUB = bytes.fromhex(
    "6780c5fc70275e2c7061a0e7877bb174deadeb9887027f3fa83654158ba7f50c"
    "3cba8c34bc35d20e81f730ac1c7bd6d661a942f90c6a9ca55c512f9e4a001266"
)
F_STOC = bytes.fromhex(  # the client's signature of ST-C || ST-S || StoC || CtoS
    "334e2b10b449b26713082cc355915fd0f49684ff565f1975589a02edf11bbffb"
    "c83539804ac7fa11c8ea5510481b19b1a2ba62f13949e9a4e35bf05dbd274d7c"
)
F_CTOS = bytes.fromhex(  # the meter's of ST-S || ST-C || CtoS || StoC
    "53acd828cb9635b0fa91d05690aba4181d66dafa57ea313c7b825feeae7cedcf"
    "5f54903524f991ca307cdec06f319fca2008e7688f7930b54250e53d7684d44d"
)
FORGED = bytes.fromhex(  # the client's signature with the challenges swapped
    "a4461a44123338028e9b5a879e60530d2da13d6359c2d85c49a05e140cf57dc9"
    "52e407332779abea3f45ff3eb53cc6d484e65c9f4630280ab2ba859d786df1b7"
)


def signing():
    return suite12.Signing(ecc.KeyPair(ecc.P256, SERVER_D, SERVER_PUB), {ST_C: CLIENT_PUB})


def test_ecdsa_f_stoc_checked_and_f_ctos_signed():
    old = ecc.use(None)  # the pure code (RFC 6979 nonces: F_CTOS exactly)
    try:
        assert suite12.hls_reply(7, F_STOC, b"", signing(), ST_C, ST_S, STOC, CTOS, 1) == F_CTOS
    finally:
        ecc.use(old)


def test_ecdsa_precomputed_values():
    assert ecc.verify_message(ecc.P256, SERVER_PUB, F_CTOS, ST_S, ST_C, CTOS, STOC)


def refused(answer, why, title=ST_C, suite=1):
    try:
        suite12.hls_reply(7, answer, b"", signing(), title, ST_S, STOC, CTOS, suite)
    except suite12.HlsError as ex:
        assert why in str(ex), str(ex)
        return
    raise AssertionError("accepted")


def test_ecdsa_forged_f_stoc_refused():
    # a valid signature of other data (the challenges the other way round)
    refused(FORGED, "does not verify")


def test_ecdsa_unknown_client_title_refused():
    refused(bytes(64), "no public signing key", title=b"STRANGER")


def test_ecdsa_wrong_length_refused():
    refused(bytes(96), "of 96 bytes, 64 expected")


def test_ecdsa_suite_mismatch_refused():
    refused(bytes(64), "signing key is for suite 1", suite=2)


def test_client_key_off_the_curve_refused():
    bad = bytearray(CLIENT_PUB)
    bad[63] ^= 1
    sg = signing()
    try:
        sg.add_client_key(b"BADPOINT", bytes(bad))
    except ecc.EccError:
        return
    raise AssertionError("a point off the curve was taken")


def test_replayed_f_stoc_refused():
    # an f(StoC) recorded from an earlier association signs that one's
    # challenge: against a fresh StoC it does not verify
    fresh = bytes(range(1, 33))
    try:
        suite12.hls_reply(7, F_STOC, b"", signing(), ST_C, ST_S, fresh, CTOS, 1)
    except suite12.HlsError as ex:
        assert "does not verify" in str(ex)
        return
    raise AssertionError("a replayed f(StoC) was taken")
