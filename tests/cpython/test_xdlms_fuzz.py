# Hostile xDLMS requests: whatever arrives, Services answers with a
# well-formed response (or an exception-response) and keeps serving.

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from test_xdlms import ENERGY, call, make  # noqa: E402

from support import unhex  # noqa: E402

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RESPONSE_TAGS = {0xC4, 0xC5, 0xC7, 0xD8}

VALID = [
    "C001C1" + ENERGY + "0200",
    "C003C1 02" + ENERGY + "0200 0007 0100630100ff 0200",
    "C101C1" + ENERGY + "0200 0600000064",
    "C104C1 01" + ENERGY + "0200 01 0600000001",
    "C301C1" + ENERGY + "01 01 0F05",
    "C102C1" + ENERGY + "0200 00 00000001 03 060000",
    "C002C1 00000001",
]


def served_after(s):
    # the service still answers a plain GET correctly
    return call(s, "C001C1" + ENERGY + "0200")[:4] == unhex("C401C1 00")


@FAST
@given(st.binary(max_size=200), st.integers(min_value=16, max_value=1024))
def test_random_bytes(data, max_pdu):
    m, a, s = make(client_max_pdu=max_pdu)
    out = bytearray(2048)
    end = s.handle(data, 0, len(data), out, 8, 2048)
    assert 8 + 3 <= end <= 8 + max(max_pdu, 3)
    assert out[8] in RESPONSE_TAGS
    assert served_after(s)


@FAST
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_requests(base, data):
    req = bytearray(unhex(base))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        i = data.draw(st.integers(min_value=0, max_value=len(req) - 1))
        req[i] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=1, max_value=len(req)))
    m, a, s = make(client_max_pdu=data.draw(st.sampled_from([64, 128, 1024])))
    out = bytearray(2048)
    end = s.handle(bytes(req[:cut]), 0, cut, out, 8, 2048)
    assert end > 8 and out[8] in RESPONSE_TAGS
    assert served_after(s)
