# Hostile general-block-transfer APDUs through a whole channel (wrapper):
# whatever block-control, block numbers, acknowledgements and block data a
# client sends, in whatever order, the meter never raises, answers only with
# GBT blocks or a standard refusal (exception-response), never sends a block
# longer than the client's max PDU, and serves the next plain request.

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from gbt_support import block, fields  # noqa: E402
from test_gbt import AARQ_GBT, GET_BIG, Wsession  # noqa: E402

from support import unhex  # noqa: E402

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GET_ENERGY = unhex("C001C1 0001 0100010800ff 0200")
ANSWER_TAGS = {0xE0, 0xD8, 0xC4}
CLIENT_PDU = 128


def check_answers(out):
    for apdu in out:
        assert apdu[0] in ANSWER_TAGS, apdu.hex()
        assert len(apdu) <= CLIENT_PDU
        if apdu[0] == 0xE0:
            fields(apdu)  # well formed: the data ends the APDU
        elif apdu[0] == 0xD8:
            assert len(apdu) == 3


def still_serves(s):
    # ... and no bug was caught on the way (the channel's last resort)
    assert not [m for m in s.log if "internal error" in m], s.log
    out = s.send(GET_ENERGY)
    return out == [unhex("C401C1 00 0600003039")]


gbt_apdus = st.builds(
    block,
    st.integers(min_value=0, max_value=255),
    st.integers(min_value=0, max_value=0xFFFF) | st.integers(min_value=0, max_value=12),
    st.integers(min_value=0, max_value=0xFFFF) | st.integers(min_value=0, max_value=12),
    st.binary(max_size=40) | st.sampled_from([b"", unhex(GET_BIG), unhex(GET_BIG)[:5], unhex(GET_BIG)[5:]]),
)


@FAST
@given(st.lists(gbt_apdus | st.binary(min_size=1, max_size=30).map(lambda b: b"\xe0" + b), max_size=12))
def test_any_sequence_of_gbt_apdus(apdus):
    s = Wsession(AARQ_GBT)
    for apdu in apdus:
        check_answers(s.send(apdu))
    assert still_serves(s)


@FAST
@given(st.integers(min_value=1, max_value=63), st.lists(st.tuples(st.integers(0, 12), st.integers(0, 63)), max_size=10))
def test_any_acknowledgements_during_a_response(window, acks):
    # A real transfer under way, then acknowledgements of any block with any
    # window: re-sends, refusals, never a crash.
    s = Wsession(AARQ_GBT)
    check_answers(s.send(block(0x80 | window, 1, 0, unhex(GET_BIG))))
    bn = 1
    for bna, w in acks:
        bn += 1
        check_answers(s.send(block(w, bn, bna)))
    assert still_serves(s)
