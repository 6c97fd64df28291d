# Property tests for the link layers: hostile bytes never crash or hang them,
# and the byte chunking of a valid session never changes what happens.

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from hdlc_peer import LLC_REQ, Driver, Frame, disc, iframe, rr, snrm, snrm_params  # noqa: E402

from dlms_micro.link import hdlc, wrapper  # noqa: E402

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def echo(req):
    return b"R" + req


def session_frames(apdus):
    frames = [snrm(snrm_params(128, 128, 1, 1))]
    for k, a in enumerate(apdus):
        frames.append(iframe(k & 7, k & 7, LLC_REQ + a))
    frames.append(disc())
    return frames


def run_session(frames, chunks, garbage=b""):
    link = hdlc.HdlcServer()
    d = Driver(link, echo)
    data = b""
    for f in frames:
        data += garbage + f
    if not chunks:
        d.send(data)
    else:
        pos = 0
        for c in chunks:
            d.send(data[pos : pos + c])
            pos += c
        d.send(data[pos:])
    d.tick(1000)
    return d


@FAST
@given(st.binary(max_size=600), st.booleans())
def test_hdlc_random_bytes_never_crash(data, connected):
    link = hdlc.HdlcServer()
    d = Driver(link, echo)
    if connected:
        d.send(snrm())
    for chunk_at in (len(data) // 3, len(data)):
        d.send(data[:chunk_at])
        d.send(data[chunk_at:])
    d.tick(100)
    d.tick(200000)
    for f in d.sent:
        Frame(f)  # everything the meter sends is a well-formed frame
    assert link._rpos <= link._wpos <= len(link.rx)


@FAST
@given(
    st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=40), max_size=40),
)
def test_hdlc_chunking_does_not_change_the_session(apdus, chunks):
    frames = session_frames(apdus)
    ref = run_session(frames, [])
    got = run_session(frames, chunks)
    assert got.apdus == ref.apdus == apdus
    assert got.sent == ref.sent


@FAST
@given(
    st.lists(st.binary(min_size=0, max_size=100), min_size=1, max_size=4),
    st.binary(min_size=1, max_size=12).filter(lambda g: 0x7E not in g),
)
def test_hdlc_garbage_between_frames_is_skipped(apdus, garbage):
    frames = session_frames(apdus)
    got = run_session(frames, [], garbage)
    assert got.apdus == apdus


@FAST
@given(st.binary(max_size=1200), st.integers(min_value=1, max_value=64))
def test_wrapper_random_bytes_never_crash(data, step):
    link = wrapper.WrapperServer(max_apdu=256)
    for pos in range(0, len(data), step):
        piece = data[pos : pos + step]
        k = 0
        guard = 0
        while k < len(piece):
            k += link.feed(piece, k, len(piece), 0)
            while True:
                ev = link.next_event(0)
                if ev == wrapper.EV_NONE:
                    break
                if ev == wrapper.EV_APDU:
                    assert link.apdu_end - link.apdu_start <= 256
                    link.send_apdu(link.TX_APDU_START + 1)
                if ev == wrapper.EV_CLOSE:
                    link.reset()
            guard += 1
            assert guard < 10000
