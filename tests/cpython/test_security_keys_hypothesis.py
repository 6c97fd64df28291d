# Property tests for the key store's invocation counters (CPython only):
# random sequences of sends, receives, HLS checks, restarts (clean or by a
# power cut in the middle of a write) and storage failures.

import sys
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from keystore_support import CLIENT_A, CLIENT_B, MemStorage, store, tx_record  # noqa: E402

from dlms_micro.security import keys as ks  # noqa: E402

SETTINGS = settings(max_examples=300, deadline=None)

TITLES = (CLIENT_A, CLIENT_B)

tx_ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 40)),
        st.tuples(st.just("cut"), st.integers(0, 3)),  # power cut during the n-th next write
        st.just(("restart",)),
        st.just(("fail",)),
        st.just(("heal",)),
    ),
    max_size=40,
)


@SETTINGS
@given(st.integers(1, 50), st.integers(0, 2**32 - 200), tx_ops)
@example(7, 2**32 - 200, [("send", 40)] * 3 + [("restart",)] + [("send", 40)] * 3)
@example(3, 0, [("send", 5), ("cut", 0), ("send", 5), ("restart",), ("send", 5)])
def test_transmit_counter_never_repeats_and_never_wraps(reserve, start, ops):
    s = MemStorage()
    if start:
        s.data[ks.STORE_TX] = tx_record(start)
    k = store(s, tx_reserve=reserve)
    used = []
    writes = 0
    for op in ops:
        if op[0] == "send":
            for _ in range(op[1]):
                before = s.puts
                write_fails = s.fail or s.cut_at == 0
                try:
                    v = k.next_tx_ic()
                except ks.InvocationCounterError:
                    if not write_fails:  # refused for no failed write: exhausted
                        assert k.tx_ic == 0xFFFFFFFF
                    break
                assert 0 <= v <= 0xFFFFFFFE
                assert not used or v > used[-1]  # increasing, so never repeated
                used.append(v)
                writes += s.puts - before
        elif op[0] == "cut":
            s.cut_at = op[1]
        elif op[0] == "restart":
            s.cut_at = -1
            k = store(s, tx_reserve=reserve)
        elif op[0] == "fail":
            s.fail = True
        else:
            s.fail = False
    # flash wear: one write per `reserve` values handed out, plus one per
    # restart that sent anything (the restarts' skipped values)
    restarts = sum(1 for op in ops if op[0] == "restart")
    assert writes <= len(used) // reserve + restarts + 1


rx_ops = st.lists(
    st.one_of(
        st.tuples(st.just("apdu"), st.integers(0, 1), st.integers(0, 1), st.integers(0, 60)),
        st.tuples(st.just("hls"), st.integers(0, 1), st.integers(0, 1), st.integers(0, 60)),
        st.tuples(st.just("durable"), st.integers(0, 1), st.integers(0, 1), st.integers(0, 60)),
        st.just(("sync_restart",)),
        st.just(("cut_restart",)),
    ),
    max_size=60,
)


@SETTINGS
@given(st.integers(1, 8), rx_ops)
def test_receive_counters_follow_the_rules_and_survive_restarts(step, ops):
    # issue 18: an accepted counter is never accepted again, across power
    # cuts too; a cut costs a client at most step - 1 values, a sync nothing
    s = MemStorage()
    k = store(s, rx_reserve=step)
    nxt = {}  # (key, title) -> next expected, the model
    floor = {}
    accepted = {}  # (key, title) -> every plain accept ever
    for op in ops:
        if op[0] in ("apdu", "hls", "durable"):
            key = (op[1], op[2])
            title = TITLES[op[2]]
            ic = op[3]
            n = nxt.get(key, 0)
            f = floor.get(key, 0)
            if op[0] == "hls":
                got = k.accept_hls_ic(op[1], title, 0, ic)
                assert got == (ic >= f)
                if got:
                    nxt[key] = floor[key] = max(n, ic + 1)
            else:
                got = k.accept_rx_ic(op[1], title, 0, ic, op[0] == "durable")
                assert got == (ic >= n)
                if got:
                    seen = accepted.setdefault(key, [])
                    assert ic not in seen  # no replay of an accepted APDU
                    seen.append(ic)
                    floor[key] = n
                    nxt[key] = ic + 1
            if got:  # durable before the answer: a cut now loses nothing
                assert store(s).rx_ic(op[1], title, 0) >= nxt[key]
            assert k.rx_ic(op[1], title, 0) == nxt.get(key, 0)
        elif op[0] == "sync_restart":
            k.sync_rx()
            k = store(s, rx_reserve=step)
            for key in nxt:
                assert k.rx_ic(key[0], TITLES[key[1]], 0) == nxt[key]
                floor[key] = nxt[key]
        else:  # power cut: the restart starts from the stored reservation
            k = store(s, rx_reserve=step)
            for key in nxt:
                got = k.rx_ic(key[0], TITLES[key[1]], 0)
                assert got >= nxt[key]  # never behind: no replay
                assert got - nxt[key] < step  # a bounded gap for the client
                nxt[key] = floor[key] = got
