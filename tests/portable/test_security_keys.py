# The key store: transmit counter reservations across power cuts and
# exhaustion, receive counters (replay, HLS windows of both client styles,
# persistence), key and policy changes pending until the next association,
# stored records, and keys kept out of repr.

from cosem_support import allocated
from dlms_micro.security import keys as ks
from keystore_support import AK, CLIENT_A, CLIENT_B, EK, KEK, TITLE, MemStorage, PowerCut, store, tx_record
from support import raises

NEW_EK = bytes(range(16, 32))


# ------------------------------------------------------------ transmit


def test_tx_counter_counts_from_one_and_stores_a_reservation_first():
    # 0 is never sent: dlms-cosem accepts only counters above its initial 0
    s = MemStorage()
    k = store(s, tx_reserve=4)
    assert k.tx_ic == 1 and s.puts == 0  # nothing stored before it is needed
    assert [k.next_tx_ic() for _ in range(3)] == [1, 2, 3]
    assert s.data[ks.STORE_TX] == tx_record(5)
    assert k.tx_ic == 4


def test_tx_reservation_written_once_per_reserve_values():
    s = MemStorage()
    k = store(s, tx_reserve=4)
    for i in range(1, 11):
        assert k.next_tx_ic() == i
    assert s.puts == 3  # at 1, 5 and 9
    assert s.data[ks.STORE_TX] == tx_record(13)


def test_tx_restart_starts_at_the_stored_mark():
    s = MemStorage()
    k = store(s, tx_reserve=4)
    for _ in range(5):
        k.next_tx_ic()
    k2 = store(s, tx_reserve=4)
    assert k2.tx_ic == 9
    assert k2.next_tx_ic() == 9
    assert s.data[ks.STORE_TX] == tx_record(13)


def test_tx_counter_never_repeats_with_a_power_cut_at_any_write():
    # Run the meter, cut the power during its n-th write (that write is lost,
    # the meter stops), restart on what the storage kept; for every n, no
    # value is ever handed out twice.
    for cut in range(6):
        s = MemStorage()
        used = []
        k = store(s, tx_reserve=3)
        s.cut_at = cut
        try:
            for _ in range(20):
                used.append(k.next_tx_ic())
        except ks.InvocationCounterError:  # PowerCut, as the store reports it
            pass
        assert s.cut_at == -1  # the cut happened
        k = store(s, tx_reserve=3)
        for _ in range(7):
            v = k.next_tx_ic()
            assert v not in used, (cut, v, used)
            used.append(v)


def test_tx_failed_reservation_refuses_then_retries():
    s = MemStorage()
    k = store(s, tx_reserve=2)
    assert k.next_tx_ic() == 1
    assert k.next_tx_ic() == 2
    s.fail = True
    e = raises(ks.InvocationCounterError, k.next_tx_ic)
    assert "reservation" in str(e)
    buf = bytearray(b"\xaa" * 4)
    raises(ks.InvocationCounterError, k.put_next_tx_ic, buf, 0)
    assert buf == b"\xaa" * 4 and k.tx_ic == 3  # nothing handed out
    s.fail = False
    assert k.next_tx_ic() == 3


def test_tx_put_next_writes_big_endian_halves():
    s = MemStorage({ks.STORE_TX: tx_record(0x3FFFFFFF)})
    k = store(s)
    buf = bytearray(6)
    assert k.put_next_tx_ic(buf, 1) == 5
    assert buf == b"\x00\x3f\xff\xff\xff\x00"
    assert k.put_next_tx_ic(buf, 2) == 6
    assert buf == b"\x00\x3f\x40\x00\x00\x00"
    assert k.next_tx_ic() == 0x40000001
    k.put_tx_ic(buf, 0)
    assert buf[0:4] == b"\x40\x00\x00\x02" and k.tx_ic == 0x40000002


def test_tx_put_next_allocates_nothing_between_reservations():
    k = store(MemStorage(), tx_reserve=1000)
    buf = bytearray(4)
    k.put_next_tx_ic(buf, 0)
    n = allocated(lambda: k.put_next_tx_ic(buf, 0))
    assert n is None or n == 0, n


def test_tx_exhaustion_refuses_instead_of_wrapping():
    s = MemStorage({ks.STORE_TX: tx_record(0xFFFFFFFD)})
    k = store(s, tx_reserve=100)
    assert k.next_tx_ic() == 0xFFFFFFFD
    assert s.data[ks.STORE_TX] == tx_record(0xFFFFFFFF)  # capped
    assert k.next_tx_ic() == 0xFFFFFFFE
    e = raises(ks.InvocationCounterError, k.next_tx_ic)
    assert "exhausted" in str(e)
    raises(ks.InvocationCounterError, k.put_next_tx_ic, bytearray(4), 0)
    assert k.tx_ic == 0xFFFFFFFF
    k2 = store(s)  # and after a restart
    raises(ks.InvocationCounterError, k2.next_tx_ic)


# ------------------------------------------------------------- receive


def test_rx_refuses_lower_and_equal_accepts_higher():
    k = store()
    assert k.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 0
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 5)
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 5)  # replay of the last
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 4)
    assert k.check_rx_ic(ks.KEY_EK, CLIENT_A, 0, 6) and not k.check_rx_ic(ks.KEY_EK, CLIENT_A, 0, 5)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 9)  # gaps are fine
    assert k.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 10
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, -1)
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 2**32)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 2**32 - 1)
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 2**32 - 1)  # the end


def test_rx_counters_are_per_key_and_per_client_title_read_in_place():
    k = store()
    frame = b"\x00\x00" + CLIENT_B
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 100)
    assert k.accept_rx_ic(ks.KEY_EK, frame, 2, 3)
    assert k.accept_rx_ic(ks.KEY_BK, CLIENT_A, 0, 1)
    assert k.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 101
    assert k.rx_ic(ks.KEY_EK, CLIENT_B, 0) == 4
    assert k.rx_ic(ks.KEY_BK, CLIENT_A, 0) == 2


def test_rx_hls_dlms_cosem_style_same_counter_in_apdu_and_f_stoc():
    # dlms-cosem 25.1.0 as observed: the AARQ's InitiateRequest protected
    # with 100 moves its counter to 101; f(StoC) is made with the counter
    # without moving it, so the ACTION that carries it is protected with 101
    k = store()
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 100)  # AARQ (glo-initiate)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 101)  # ACTION reply_to_HLS
    assert k.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 101)  # f(StoC), same value
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 101)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 102)  # the next request


def test_rx_hls_gurux_style_consecutive_counters_either_order():
    k = store()
    # f(StoC) made first with n, the APDU carrying it protected with n + 1:
    # gurux-dlms 1.0.203 as observed on the wire (AARQ 100, f(StoC) 101,
    # glo-action-request 102); the meter sees the APDU's counter first
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 100)  # AARQ
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 102)
    assert k.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 101)
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 102)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 103)
    # the APDU with n, f(StoC) with n + 1
    k = store()
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 20)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 21)
    assert k.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 22)
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 22)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 23)


def test_rx_hls_never_takes_a_counter_accepted_before_the_carrying_apdu():
    k = store()
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 30)  # AARQ
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 31)  # carrying APDU
    assert not k.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 30)  # the AARQ's
    assert not k.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 3)
    assert k.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 31)
    assert not k.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 31)  # no second f(StoC)
    assert k.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 32
    # HLS without protected APDUs: f(StoC) counters alone move the counter
    k = store()
    assert k.accept_hls_ic(ks.KEY_EK, CLIENT_B, 0, 7)
    assert not k.accept_hls_ic(ks.KEY_EK, CLIENT_B, 0, 7)
    assert k.accept_hls_ic(ks.KEY_EK, CLIENT_B, 0, 8)


def test_rx_new_title_refused_when_every_slot_is_taken():
    k = store(rx_slots=2)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 1)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_B, 0, 1)
    assert not k.check_rx_ic(ks.KEY_BK, CLIENT_A, 0, 1)
    assert not k.accept_rx_ic(ks.KEY_BK, CLIENT_A, 0, 1)
    assert not k.accept_hls_ic(ks.KEY_BK, CLIENT_A, 0, 1)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_B, 0, 2)  # known ones go on


def test_rx_counter_accepted_is_never_accepted_again_after_a_power_cut():
    # issue 18: every accepted counter is below a stored mark before the
    # accept says yes; a restart starts from that mark
    s = MemStorage()
    k = store(s, rx_reserve=4)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 0)  # a new title: mark 0 + 4 stored
    assert s.puts == 1
    for ic in (1, 2, 3):
        assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, ic)  # inside the reservation
    assert s.puts == 1
    after_cut = store(s)
    assert after_cut.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 4  # above every accepted value
    for ic in (0, 1, 2, 3):
        assert not after_cut.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, ic)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 4)  # reaches the mark: 4 + 4 stored first
    assert s.puts == 2
    assert store(s).rx_ic(ks.KEY_EK, CLIENT_A, 0) == 8
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 20)  # a jump: 20 + 4
    assert store(s).rx_ic(ks.KEY_EK, CLIENT_A, 0) == 24


def test_rx_sync_gives_the_unused_reservation_back():
    # an orderly release stores the exact next value: a client that goes on
    # with its counter after a restart is not refused
    s = MemStorage()
    k = store(s, rx_reserve=32)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 5)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 6)
    assert store(s).rx_ic(ks.KEY_EK, CLIENT_A, 0) == 37
    assert k.sync_rx()
    puts = s.puts
    assert k.sync_rx()  # nothing moved: no write
    assert s.puts == puts
    k2 = store(s)
    assert k2.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 7
    assert not k2.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 6)
    assert k2.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 7)


def test_rx_reserve_1_stores_every_counter_exactly():
    s = MemStorage()
    k = store(s, rx_reserve=1)
    for ic in (3, 4, 9):
        assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, ic)
        assert store(s).rx_ic(ks.KEY_EK, CLIENT_A, 0) == ic + 1
    assert s.puts == 3


def test_rx_hls_counter_is_durable_before_the_reply():
    s = MemStorage()
    k = store(s, rx_reserve=1)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 30)  # AARQ
    assert k.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 40)  # f(StoC)
    k2 = store(s)  # power cut right after the reply
    assert not k2.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 30)
    assert not k2.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 40)
    assert k2.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 41)


def test_rx_accept_is_refused_when_its_counter_cannot_be_stored():
    s = MemStorage()
    k = store(s, rx_reserve=2)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 1)  # mark 3
    s.fail = True
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 2)  # inside the reservation: no write
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 3)  # needs a write that fails
    assert k.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 3  # unchanged
    assert not k.accept_hls_ic(ks.KEY_EK, CLIENT_A, 0, 5)
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_B, 0, 1)
    assert k.rx_ic(ks.KEY_EK, CLIENT_B, 0) == 0 and k._slot(ks.KEY_EK, CLIENT_B, 0) < 0
    assert not k.sync_rx()  # the storage still fails: reported, not raised
    s.fail = False
    assert k.sync_rx()
    assert store(s).rx_ic(ks.KEY_EK, CLIENT_A, 0) == 3


def test_rx_table_full_is_said_for_a_title_beyond_rx_slots():
    k = store(rx_slots=2)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 1)
    assert not k.rx_table_full(ks.KEY_EK, CLIENT_B, 0)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_B, 0, 1)
    third = b"CLI\x00\x00\x00\x00\x03"
    assert k.rx_table_full(ks.KEY_EK, third, 0)
    assert not k.rx_table_full(ks.KEY_EK, CLIENT_A, 0)  # known titles go on
    assert not k.accept_rx_ic(ks.KEY_EK, third, 0, 1)


def test_rx_stored_table_larger_than_rx_slots_is_kept_whole():
    s = MemStorage()
    k = store(s, rx_slots=3)
    for t in (CLIENT_A, CLIENT_B, b"CLI\x00\x00\x00\x00\x03"):
        assert k.accept_rx_ic(ks.KEY_EK, t, 0, 10)
    k2 = store(s, rx_slots=1)
    assert k2.rx_slots == 3
    for t in (CLIENT_A, CLIENT_B, b"CLI\x00\x00\x00\x00\x03"):
        assert not k2.accept_rx_ic(ks.KEY_EK, t, 0, 10)


def test_rx_accept_allocates_nothing_below_2_30():
    k = store(rx_reserve=1000)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 1)
    ic = [2]

    def step():
        k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, ic[0])
        ic[0] += 1

    n = allocated(step)
    assert n is None or n == 0, n


# -------------------------------------------------------- key changes


def test_key_transfer_pending_until_the_next_association():
    s = MemStorage()
    k = store(s)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 50)
    assert k.accept_rx_ic(ks.KEY_BK, CLIENT_A, 0, 50)
    g = k.generation
    k.store_keys(((ks.KEY_EK, NEW_EK),))
    assert k.pending and k.ek == EK  # this association keeps its key
    assert k.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 51
    assert k.activate_pending()
    assert k.ek == NEW_EK and k.key(ks.KEY_EK) == NEW_EK and not k.pending
    assert k.generation == g + 1
    assert k.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 0  # new key: counter starts over
    assert k.rx_ic(ks.KEY_BK, CLIENT_A, 0) == 51  # other keys keep theirs
    assert not k.activate_pending()
    k2 = store(s)  # stored, and the reset with it
    assert k2.ek == NEW_EK and k2.ak == AK and k2.kek == KEK and k2.bk is None
    assert k2.rx_ic(ks.KEY_EK, CLIENT_A, 0) == 0
    assert k2.rx_ic(ks.KEY_BK, CLIENT_A, 0) == 51


def test_key_change_stored_then_power_cut_before_activation():
    s = MemStorage()
    k = store(s)
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 50)
    k.store_keys(((ks.KEY_EK, NEW_EK),))
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 51, True)  # old key, stored
    k2 = store(s)  # restart: the stored keys are active, old counters gone
    assert k2.ek == NEW_EK and not k2.pending
    assert k2.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 0)


def test_transferring_the_current_key_again_keeps_its_counters():
    k = store()
    assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 50)
    g = k.generation
    k.store_keys(((ks.KEY_EK, EK),))
    k.activate_pending()
    assert k.generation == g
    assert not k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 3)  # no replay window


def test_store_keys_refuses_bad_input_and_storage_failure_changes_nothing():
    s = MemStorage()
    k = store(s)
    raises(ValueError, k.store_keys, ((4, NEW_EK),))
    raises(ValueError, k.store_keys, ((ks.KEY_EK, NEW_EK), (ks.KEY_AK, b"short")))
    s.fail = True
    raises(OSError, k.store_keys, ((ks.KEY_EK, NEW_EK),))
    assert not k.pending and s.puts == 0
    assert not k.activate_pending() and k.ek == EK


def test_policy_pending_and_stored():
    s = MemStorage()
    k = store(s, policy=ks.POLICY_AUTHENTICATED_REQUEST)
    assert k.policy == k.configured_policy == 0x04
    k.store_policy(0x6C)
    assert k.policy == 0x04 and k.configured_policy == 0x6C and k.pending
    k.activate_pending()
    assert k.policy == 0x6C and not k.pending
    assert store(s).policy == 0x6C  # the stored policy beats the default
    raises(ValueError, k.store_policy, 0x90)  # signatures: not in suite 0
    raises(ValueError, k.store_policy, 0x6D)  # bit 0
    assert ks.valid_policy(0xEC, 1) and not ks.valid_policy(0x100)


def test_defaults_apply_until_something_is_stored():
    s = MemStorage()
    k = store(s, bk=NEW_EK, policy=0x24)
    assert (k.ek, k.bk, k.ak, k.kek, k.policy) == (EK, NEW_EK, AK, KEK, 0x24)
    assert s.puts == 0
    k = store(s, ek=None, ak=None, kek=None)
    assert k.ek is None and not k.has_key(ks.KEY_EK) and k.has_key(ks.KEY_KEK) is False
    raises(ValueError, ks.KeyStore, s, TITLE[:7])
    raises(ValueError, ks.KeyStore, None, TITLE)
    raises(ValueError, lambda: store(ek=b"x" * 15))
    raises(ValueError, lambda: store(policy=0x10))
    raises(ValueError, k.key, 4)


def test_corrupt_records_refuse_to_load():
    for key in (ks.STORE_KEYS, ks.STORE_TX, ks.STORE_RX):
        s = MemStorage()
        k = store(s, tx_reserve=2)
        k.next_tx_ic()
        k.store_keys(((ks.KEY_EK, NEW_EK),))
        assert k.accept_rx_ic(ks.KEY_EK, CLIENT_A, 0, 1)
        rec = bytearray(s.data[key])
        rec[3] ^= 1
        s.data[key] = bytes(rec)
        e = raises(ValueError, store, s)
        assert key in str(e)
        s.data[key] = s.data[key][:-1]
        raises(ValueError, store, s)


def test_client_titles_configured_per_sap():
    k = store(client_titles={1: CLIENT_A})
    assert k.expected_client_title(1) == CLIENT_A and k.expected_client_title(16) is None
    assert k.client_title_ok(1, b"\x00" + CLIENT_A, 1)
    assert not k.client_title_ok(1, CLIENT_B, 0)
    assert k.client_title_ok(16, CLIENT_B, 0)
    raises(ValueError, lambda: store(client_titles={1: b"short"}))


def test_keys_never_appear_in_repr_or_str():
    k = store(bk=bytes(range(32, 48)))
    k.store_keys(((ks.KEY_AK, NEW_EK),))
    for text in (repr(k), str(k), "%s" % k):
        assert "KeyStore" in text and "444D490000BC614E" in text
        assert "EK,BK,AK,KEK" in text and "pending=yes" in text
        for key in (EK, AK, KEK, NEW_EK, bytes(range(32, 48))):
            assert "".join(["%02X" % x for x in key]) not in text.upper()
            assert repr(key) not in text
