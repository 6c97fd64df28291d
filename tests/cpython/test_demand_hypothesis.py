# Demand register under arbitrary tick sequences: the clock stepping forward
# and back by any amount, a monotone energy that wraps at 2**32, and the
# methods and SETs interleaved. Nothing raises, no average goes negative,
# the maximum demand is at least every last_average_value a close produced
# since the Extended register's reset, and no energy means no demand.

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from cosem_support import act, get_ok, put  # noqa: E402
from test_cosem_demand import D, E, X, setup  # noqa: E402

from dlms_micro.cosem import base, demand  # noqa: E402

FAST = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

STEP = st.one_of(
    st.tuples(st.just("tick"), st.integers(-4000, 8000), st.integers(0, 1 << 20)),
    st.tuples(st.just("tick"), st.integers(0, 120), st.integers(0, 5000)),
    st.tuples(st.just("next"), st.integers(0, 600), st.integers(0, 5000)),
    st.tuples(st.just("reset"), st.integers(0, 600), st.integers(0, 5000)),
    st.tuples(st.just("max_reset"), st.integers(0, 600), st.integers(0, 5000)),
    st.tuples(st.just("period"), st.sampled_from([1, 7, 60, 300, 900, 3600]), st.integers(0, 5000)),
    st.tuples(st.just("periods"), st.integers(1, 4), st.integers(0, 5000)),
)


def run(steps, first_energy, n, zero):
    ctx, obj, xobj, wall = setup(n=n, energy=first_energy)
    m = ctx.meter
    s = m.state
    demand.tick(m, obj, wall.t)
    since_reset = []
    for kind, a, b in steps:
        if not zero:
            s[E] = (s[E] + b) & 0xFFFFFFFF
        closed = False
        if kind == "tick":
            wall.t += a
            closed = demand.tick(m, obj, wall.t)
        elif kind == "period":
            assert put(ctx, obj, 8, "06%08x" % a) == base.SUCCESS
        elif kind == "periods":
            assert put(ctx, obj, 9, "12%04x" % a) == base.SUCCESS
        else:
            wall.t += a
            if kind == "max_reset":
                assert act(ctx, xobj, 1, "0F00")[0] == base.SUCCESS
                since_reset = []
            else:
                assert act(ctx, obj, 1 if kind == "reset" else 2, "0F00")[0] == base.SUCCESS
                closed = kind == "next"
        cur = s[D + demand.S_CURRENT]
        last = s[D + demand.S_LAST]
        assert cur >= 0 and last >= 0
        if zero:
            assert cur == 0 and last == 0
        if closed:
            since_reset.append(last)
            assert s[X] >= last
        for v in since_reset:
            assert s[X] >= v
        start = s[D + demand.S_START]
        end = s[D + demand.S_END]
        if end is not None:
            assert start < end
        # every attribute still encodes
        for attr in range(2, 10):
            get_ok(ctx, obj, attr)


@FAST
@given(st.lists(STEP, max_size=60), st.integers(0, (1 << 32) - 1), st.integers(1, 4))
def test_arbitrary_ticks_never_raise_nor_go_negative(steps, first, n):
    run(steps, first, n, False)


@FAST
@given(st.lists(STEP, max_size=40), st.integers(0, (1 << 32) - 1), st.integers(1, 4))
def test_no_energy_no_demand(steps, first, n):
    run(steps, first, n, True)

