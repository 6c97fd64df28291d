# The meter's security material and invocation counters (Green Book 9.2.3
# "security context"; Blue Book 4.4.7 Security setup). Portable and sans-IO:
# everything that must survive a restart goes through the storage object the
# port passes in (duck-typed: get(key) -> bytes or None, put(key, bytes)
# atomic: after a power cut the key holds the old value or the new one).
#
#   keys = KeyStore(storage, system_title=b"MMM\x00\x00\xbc\x61\x4e",
#                   ek=..., ak=..., kek=..., policy=0, client_titles={1: ...})
#
# KEYS. key ids are Security setup's key_transfer ids: KEY_EK (0, global
# unicast encryption key), KEY_BK (1, global broadcast encryption key), KEY_AK
# (2, authentication key), KEY_KEK (3, master key). Each is 16 bytes or None
# (not configured). The constructor's values are the port's defaults; a key
# record in storage overrides them. A key never appears in repr/str or in an
# exception message.
#
# CHANGES APPLY FROM THE NEXT ASSOCIATION. store_keys() (key_transfer) and
# store_policy() (security_activate) write the new record to storage at once
# (atomic; on failure nothing changes, in RAM or in storage) and keep it
# *pending*: the association that made the change goes on with the keys and
# policy it started with (its reply is still protected with the old key).
# The server calls activate_pending() when a new association starts; it makes
# the pending record active, and resets the receive counters of every key
# whose value changed. After a restart the stored record is active (there is
# no association yet). Transferring a key equal to the current one is no
# change: its counters stay (resetting them would reopen old counter values
# to replay). `generation` counts changes of the active keys, so a user can
# cache what it derives from them (an AES key schedule).
# One key store serves every channel of a meter: activating on one channel
# changes the keys under associations still open on others.
#
# TRANSMIT INVOCATION COUNTER (one for everything the meter protects, whatever
# the key; never reset, so no (key, IV) pair can repeat even if a key comes
# back). next_tx_ic() / put_next_tx_ic() hand out 1, 2, 3, ... and never a
# value twice, across power cuts at any instant: storage holds a *mark*, and
# every value handed out is below a mark that is already durable. When the
# counter reaches the mark, mark + tx_reserve is stored first, then the value
# is handed out; at boot the counter starts at the stored mark (the values of
# the unused reservation are skipped). A failed store refuses the value
# (InvocationCounterError) and the next call tries again. With the default
# tx_reserve of 1024: one storage write per 1024 protected APDUs, and one per
# boot that protects anything; a boot costs at most 1023 values, so 2**32
# lasts 4 million boots. The largest value ever handed out is 2**32 - 2;
# then the counter is exhausted and every call raises InvocationCounterError
# (refuse to protect, never wrap): the stored mark 0xFFFFFFFF says so.
# The hot path keeps the counter as two 16-bit halves (small ints on
# MicroPython): put_next_tx_ic() writes the 4 bytes allocating nothing;
# next_tx_ic() returns an int (32 bytes of heap once it is >= 2**30).
#
# RECEIVE COUNTERS, one per (key id, client system title), in rx_slots fixed
# slots. Each keeps `next`, the lowest counter an APDU may carry, and `floor`,
# the value next had before the last accepted APDU.
#   accept_rx_ic(key_id, title, off, ic): ic < next -> False (replay or
#     stale); else next = ic + 1, floor = the old next, True. Equal to the
#     last accepted value is a replay and is refused. Call it only after the
#     APDU's authentication tag checked out (a forged counter must not move
#     it); check_rx_ic() says the same without changing anything, to skip a
#     decryption that would be refused anyway.
#   accept_hls_ic(key_id, title, off, ic): the counter inside f(StoC) of
#     HLS-GMAC (reply_to_HLS_authentication). Accepted when ic >= floor, then
#     next = floor = max(next, ic + 1). So the counter of f(StoC) may equal the
#     counter of the APDU that carried it (dlms-cosem), be one below it
#     (gurux-dlms 1.0.203 makes f(StoC) with n, then protects the ACTION with
#     n + 1, as seen on the wire) or above it, or be any
#     value never accepted before; it cannot be a value accepted before the
#     carrying APDU, and a second f(StoC) cannot reuse the window. Replay of
#     f(StoC) itself is impossible anyway: it authenticates the meter's fresh
#     challenge StoC. The carrying APDU must be the last one accepted on that
#     counter (xDLMS lets nothing else through while HLS is pending); when it
#     was not protected, the window is that of the AARQ's protected
#     InitiateRequest.
# A counter is 32 bits; ic may be 2**32 - 1. Values >= 2**30 are big ints on
# MicroPython: an accept then allocates one int (32 bytes).
# When every slot is taken, an APDU from a new (key, title) is refused
# (False, and rx_table_full() says why): evicting a slot would forget its
# replay state. rx_slots (default 8) sets how many client titles the table
# holds; a table stored with more is loaded whole (never forgotten).
# Persistence: A COUNTER ONCE ACCEPTED IS NEVER ACCEPTED AGAIN, ACROSS
# RESTARTS TOO (issue 18: with counters saved every 32 requests, a power cut
# reopened up to 31 accepted values, and an HLS AARQ captured before the cut
# was accepted again after it). Each slot keeps, besides `next`, a durable
# `mark`: the value stored for it, from which a restart starts (next = floor
# = mark). Every accept, whatever the APDU (AARQ InitiateRequest, f(StoC) of
# HLS, GET/SET/ACTION in the association), returns True only once the stored
# mark is above the counter it accepts: when ic + 1 > mark, mark = ic +
# rx_reserve is stored first (atomic put) and a failed store refuses the APDU
# (False, nothing changes). So what an AARQ or an HLS exchange accepts is
# durable before the AARE or the reply to HLS leaves, and so is every
# in-association APDU. For in-association APDUs the reservation (default 32)
# is the choice: one write per rx_reserve APDUs instead of one per APDU
# (flash wear on a board, an fsync per request on a host), at a price paid
# only after a power cut in the middle of an association: the meter then
# wants counters at or above the stored mark, up to rx_reserve - 1 above the
# last one it accepted, and refuses (invocation-counter-error with the
# lowest acceptable value) the client's next counters below it. sync_rx()
# (called when an association is released) stores the exact next values,
# giving the unused reservation back, so an orderly release or shutdown
# costs a client nothing. rx_reserve = 1 stores every accepted counter
# exactly (no gap ever, one write per protected request). The durable
# argument of accept_rx_ic/accept_hls_ic is kept for callers and changes
# nothing: every accept is durable.
#
# STORAGE KEYS AND FORMATS (all big-endian, each ending in the CRC-16/X.25 of
# what precedes it, low byte first; a record that fails its checks raises
# ValueError at construction, for the port to decide: silently falling back
# to default keys or a zero counter would be a security hole):
#   "sec.keys"  80 bytes: version 1, security policy, security suite, mask of
#               keys present (bit i: key id i), 4 generations (2 bytes each,
#               key id order), 4 keys of 16 bytes (zeros when absent), CRC.
#   "sec.tx"    7 bytes: version 1, mark (4 bytes), CRC.
#   "sec.rx"    2 + 16 * n + 2 bytes: version 1, n, then per slot key id,
#               generation of that key (2 bytes), client system title (8),
#               mark (5 bytes: 0..2**32, the lowest counter accepted after a
#               restart, see Persistence), CRC. Slots whose generation is not
#               their key's current one are dropped at load.

from dlms_micro import crc16
from dlms_micro.errors import DlmsError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# key ids (Security setup key_transfer key_id)
KEY_EK = const(0)  # global unicast encryption key
KEY_BK = const(1)  # global broadcast encryption key
KEY_AK = const(2)  # authentication key
KEY_KEK = const(3)  # master key, key encrypting key
KEY_COUNT = const(4)
KEY_SIZE = const(16)
TITLE_SIZE = const(8)

# security_policy bits, Security setup version 1 (bits 0 and 1 unused)
POLICY_AUTHENTICATED_REQUEST = const(0x04)
POLICY_ENCRYPTED_REQUEST = const(0x08)
POLICY_SIGNED_REQUEST = const(0x10)
POLICY_AUTHENTICATED_RESPONSE = const(0x20)
POLICY_ENCRYPTED_RESPONSE = const(0x40)
POLICY_SIGNED_RESPONSE = const(0x80)
_POLICY_SIGNED = const(0x90)
_POLICY_AUTHENTICATED = const(0x24)

# security_suite
SUITE_AES_GCM_128 = const(0)  # suite 0: AES-GCM-128, AES-128 key wrap

TX_RESERVE = const(1024)
RX_RESERVE = const(32)
RX_SAVE_STEP = RX_RESERVE  # its former name
RX_SLOTS = const(8)

STORE_KEYS = "sec.keys"
STORE_TX = "sec.tx"
STORE_RX = "sec.rx"

_VERSION = const(1)
_KEYS_SIZE = const(80)
_TX_SIZE = const(7)
_RX_SLOT_SIZE = const(16)
_TX_LAST = 0xFFFFFFFF  # stored mark of an exhausted counter
_RX_END = 0x100000000  # receive mark after the largest counter (5 bytes stored)
_NO_KEYS = (None, None, None, None)
_KEY_NAMES = ("EK", "BK", "AK", "KEK")


class InvocationCounterError(DlmsError):
    # No transmit invocation counter can be handed out: exhausted (the keys
    # must change and the counter with them, by a new firmware or storage) or
    # its reservation could not be stored.
    pass


def valid_policy(policy, suite=SUITE_AES_GCM_128):
    # A security_policy value this meter can enforce: bits 0..7 only, bits 0
    # and 1 clear, and no digital signature under suite 0.
    if policy < 0 or policy > 0xFF or policy & 0x03:
        return False
    if suite == SUITE_AES_GCM_128 and policy & _POLICY_SIGNED:
        return False
    return True


def _crc(buf, end):
    return crc16.update(crc16.INIT, buf, 0, end) ^ 0xFFFF


def _seal(buf):
    # write the CRC over buf[:-2] into its last two bytes
    n = len(buf) - 2
    c = _crc(buf, n)
    buf[n] = c & 0xFF
    buf[n + 1] = c >> 8
    return buf


def _check(rec, size, name):
    # a stored record's length, version and CRC
    if rec is None:
        return False
    n = len(rec)
    if (size and n != size) or n < 4 or rec[0] != _VERSION:
        raise ValueError("stored %s has an unknown format" % name)
    c = _crc(rec, n - 2)
    if rec[n - 2] != c & 0xFF or rec[n - 1] != c >> 8:
        raise ValueError("stored %s is corrupt (CRC)" % name)
    return True


def _key_arg(k, name):
    if k is None:
        return None
    if len(k) != KEY_SIZE:
        raise ValueError("%s must be %d bytes" % (name, KEY_SIZE))
    return bytes(k)


class KeyStore:
    def __init__(
        self,
        storage,
        system_title,
        ek=None,
        bk=None,
        ak=None,
        kek=None,
        policy=0,
        suite=SUITE_AES_GCM_128,
        client_titles=None,
        tx_reserve=TX_RESERVE,
        rx_reserve=RX_RESERVE,
        rx_slots=RX_SLOTS,
        rx_save_step=None,
    ):
        # storage: get/put object (required: counters must persist).
        # system_title: the server's 8 bytes. ek, bk, ak, kek: default keys
        # (16 bytes or None). policy, suite: default security_policy (v1 bit
        # flags) and suite. client_titles: {client_sap: 8-byte expected client
        # system title} for the clients that must present one. tx_reserve:
        # 1..65535; rx_reserve 1..65535 (rx_save_step: its former name);
        # rx_slots >= 1: how many client system titles have receive counters.
        if storage is None:
            raise ValueError("a KeyStore needs a storage (counters must survive a restart)")
        if len(system_title) != TITLE_SIZE:
            raise ValueError("server system title must be %d bytes" % TITLE_SIZE)
        if suite != SUITE_AES_GCM_128:
            raise ValueError("only security suite 0 is implemented")
        if not valid_policy(policy, suite):
            raise ValueError("security policy 0x%02X not possible with suite %d" % (policy, suite))
        if rx_save_step is not None:
            rx_reserve = rx_save_step
        if not 1 <= tx_reserve <= 0xFFFF or not 1 <= rx_reserve <= 0xFFFF or rx_slots < 1:
            raise ValueError("tx_reserve and rx_reserve 1..65535, rx_slots >= 1")
        self.storage = storage
        self.system_title = bytes(system_title)
        self.suite = suite
        self.tx_reserve = tx_reserve
        self.rx_reserve = rx_reserve
        self.generation = 0
        titles = {}
        if client_titles:
            for sap in client_titles:
                t = client_titles[sap]
                if len(t) != TITLE_SIZE:
                    raise ValueError("client system title for SAP %d must be %d bytes" % (sap, TITLE_SIZE))
                titles[sap] = bytes(t)
        self._client_titles = titles

        # keys and policy: active, and pending (None: nothing pending)
        keys = [
            _key_arg(ek, "EK"),
            _key_arg(bk, "broadcast key"),
            _key_arg(ak, "AK"),
            _key_arg(kek, "KEK"),
        ]
        gens = [0, 0, 0, 0]
        rec = storage.get(STORE_KEYS)
        if _check(rec, _KEYS_SIZE, STORE_KEYS):
            if not valid_policy(rec[1], rec[2]) or rec[2] != suite:
                raise ValueError("stored %s holds a policy or suite this meter cannot use" % STORE_KEYS)
            policy = rec[1]
            for i in range(KEY_COUNT):
                gens[i] = (rec[4 + 2 * i] << 8) | rec[5 + 2 * i]
                p = 12 + KEY_SIZE * i
                keys[i] = bytes(rec[p : p + KEY_SIZE]) if rec[3] & (1 << i) else None
        self._keys = keys
        self._gens = gens
        self._policy = policy
        self._pending_keys = None
        self._pending_gens = None
        self._pending_policy = -1

        # transmit counter: next value (hi, lo) and durable mark (hi, lo)
        # A meter that never protected anything starts at 1: 0 is never sent,
        # as clients such as dlms-cosem accept only counters above their
        # initial 0.
        mark = 1
        rec = storage.get(STORE_TX)
        if _check(rec, _TX_SIZE, STORE_TX):
            mark = (rec[1] << 24) | (rec[2] << 16) | (rec[3] << 8) | rec[4]
        self._tx_hi = self._mk_hi = mark >> 16
        self._tx_lo = self._mk_lo = mark & 0xFFFF

        # receive counter slots; a stored table larger than rx_slots is kept
        # whole (forgetting a slot would reopen its counters to replay)
        rec = storage.get(STORE_RX)
        if _check(rec, 0, STORE_RX):
            if len(rec) != 4 + _RX_SLOT_SIZE * rec[1]:
                raise ValueError("stored %s has an unknown format" % STORE_RX)
            if rec[1] > rx_slots:
                rx_slots = rec[1]
        self.rx_slots = rx_slots
        self._rx_key = [-1] * rx_slots  # key id, -1: free slot
        self._rx_gen = [0] * rx_slots
        self._rx_title = bytearray(TITLE_SIZE * rx_slots)
        self._rx_next = [0] * rx_slots
        self._rx_floor = [0] * rx_slots
        self._rx_mark = [0] * rx_slots  # the stored (durable) value
        self._rx_dirty = False  # some mark is above its next (sync_rx gives it back)
        self._slot_was_new = False  # set by _accept_slot
        if rec is not None:
            n = rec[1]
            j = 0
            for s in range(n):
                p = 2 + _RX_SLOT_SIZE * s
                k = rec[p]
                if k >= KEY_COUNT or ((rec[p + 1] << 8) | rec[p + 2]) != gens[k]:
                    continue  # its key changed since: the counter starts over
                v = rec[p + 11]
                for q in range(p + 12, p + 16):
                    v = (v << 8) | rec[q]
                self._rx_key[j] = k
                self._rx_gen[j] = gens[k]
                self._rx_title[TITLE_SIZE * j : TITLE_SIZE * j + TITLE_SIZE] = rec[p + 3 : p + 11]
                self._rx_next[j] = self._rx_floor[j] = self._rx_mark[j] = v
                j += 1

    # ------------------------------------------------------------ keys

    def key(self, key_id):
        # The active key (bytes), or None when it is not configured.
        if not 0 <= key_id < KEY_COUNT:
            raise ValueError("no key id %d" % key_id)
        return self._keys[key_id]

    @property
    def ek(self):
        return self._keys[KEY_EK]

    @property
    def bk(self):
        return self._keys[KEY_BK]

    @property
    def ak(self):
        return self._keys[KEY_AK]

    @property
    def kek(self):
        return self._keys[KEY_KEK]

    def has_key(self, key_id, pending=True):
        # Whether key_id is configured (in the pending record, if any and
        # pending is true; else in the active one).
        keys = self._pending_keys if pending and self._pending_keys is not None else self._keys
        return keys[key_id] is not None

    @property
    def policy(self):
        # the active security_policy (what this association enforces)
        return self._policy

    @property
    def configured_policy(self):
        # the newest security_policy: pending if any, else active (what
        # Security setup attribute 2 shows)
        return self._pending_policy if self._pending_policy >= 0 else self._policy

    @property
    def pending(self):
        # whether a key or policy change waits for the next association
        return self._pending_keys is not None or self._pending_policy >= 0

    def expected_client_title(self, client_sap):
        # The client system title configured for this client SAP, or None.
        return self._client_titles.get(client_sap)

    def client_title_ok(self, client_sap, buf, off):
        # Whether the 8-byte client system title at buf[off:] is acceptable
        # for this client SAP: equal to the configured one, or any when none
        # is configured.
        t = self._client_titles.get(client_sap)
        if t is None:
            return True
        for i in range(TITLE_SIZE):
            if t[i] != buf[off + i]:
                return False
        return True

    def store_keys(self, updates):
        # key_transfer: updates is a sequence of (key_id, 16-byte key). Stores
        # the new record (atomically, all keys or none) and keeps it pending
        # until activate_pending(). Raises ValueError on a bad id or size
        # (nothing changes) and whatever the storage raises (nothing changes).
        keys = list(self._pending_keys if self._pending_keys is not None else self._keys)
        gens = list(self._pending_gens if self._pending_gens is not None else self._gens)
        for u in updates:
            i = u[0]
            k = u[1]
            if not 0 <= i < KEY_COUNT or len(k) != KEY_SIZE:
                raise ValueError("key_transfer: bad key id or key size")
            if keys[i] is None or keys[i] != k:
                keys[i] = bytes(k)
                gens[i] = (gens[i] + 1) & 0xFFFF
        self._write_keys(keys, gens, self.configured_policy)
        self._pending_keys = keys
        self._pending_gens = gens

    def store_policy(self, policy):
        # security_activate: store the new policy and keep it pending until
        # activate_pending(). The caller checks it may be set (Security
        # setup: only ever stronger). Raises ValueError for a policy the
        # suite cannot enforce, and whatever the storage raises; either way
        # nothing changes.
        if not valid_policy(policy, self.suite):
            raise ValueError("security policy 0x%02X not possible with suite %d" % (policy, self.suite))
        if policy == self.configured_policy:
            return
        keys = self._pending_keys if self._pending_keys is not None else self._keys
        gens = self._pending_gens if self._pending_gens is not None else self._gens
        self._write_keys(keys, gens, policy)
        self._pending_policy = policy

    def _write_keys(self, keys, gens, policy):
        rec = bytearray(_KEYS_SIZE)
        rec[0] = _VERSION
        rec[1] = policy
        rec[2] = self.suite
        mask = 0
        for i in range(KEY_COUNT):
            rec[4 + 2 * i] = gens[i] >> 8
            rec[5 + 2 * i] = gens[i] & 0xFF
            if keys[i] is not None:
                mask |= 1 << i
                p = 12 + KEY_SIZE * i
                rec[p : p + KEY_SIZE] = keys[i]
        rec[3] = mask
        self.storage.put(STORE_KEYS, _seal(rec))

    def activate_pending(self):
        # Call when a new association starts: pending keys and policy become
        # active; the receive counters of every key that changed start over
        # (and that is stored). Returns whether anything changed.
        changed = False
        if self._pending_policy >= 0:
            self._policy = self._pending_policy
            self._pending_policy = -1
            changed = True
        keys = self._pending_keys
        if keys is not None:
            gens = self._pending_gens
            self._pending_keys = None
            self._pending_gens = None
            if gens != self._gens:
                self._keys = keys
                self._gens = gens
                self.generation += 1
                if self._drop_stale_rx():
                    self._save_rx_quietly()
            changed = True
        return changed

    def _drop_stale_rx(self):
        dropped = False
        rk = self._rx_key
        for j in range(len(rk)):
            k = rk[j]
            if k >= 0 and self._rx_gen[j] != self._gens[k]:
                rk[j] = -1
                dropped = True
        return dropped

    # ------------------------------------------------- transmit counter

    @property
    def tx_ic(self):
        # The next transmit invocation counter (not handed out, not advanced);
        # 0xFFFFFFFF once exhausted.
        return (self._tx_hi << 16) | self._tx_lo

    def put_tx_ic(self, buf, off):
        # Write tx_ic as 4 bytes at buf[off:] (no allocation); returns off + 4.
        hi = self._tx_hi
        lo = self._tx_lo
        buf[off] = hi >> 8
        buf[off + 1] = hi & 0xFF
        buf[off + 2] = lo >> 8
        buf[off + 3] = lo & 0xFF
        return off + 4

    def next_tx_ic(self):
        # The counter for the next protected APDU the meter sends, advanced.
        # Raises InvocationCounterError when none may be handed out.
        hi = self._tx_hi
        lo = self._tx_lo
        if hi == self._mk_hi and lo == self._mk_lo:
            self._reserve(hi, lo)
        if lo == 0xFFFF:
            self._tx_hi = hi + 1
            self._tx_lo = 0
        else:
            self._tx_lo = lo + 1
        return (hi << 16) | lo

    def put_next_tx_ic(self, buf, off):
        # next_tx_ic() written as 4 bytes at buf[off:] without allocating;
        # returns off + 4. Raises InvocationCounterError (buf untouched).
        hi = self._tx_hi
        lo = self._tx_lo
        if hi == self._mk_hi and lo == self._mk_lo:
            self._reserve(hi, lo)
        if lo == 0xFFFF:
            self._tx_hi = hi + 1
            self._tx_lo = 0
        else:
            self._tx_lo = lo + 1
        buf[off] = hi >> 8
        buf[off + 1] = hi & 0xFF
        buf[off + 2] = lo >> 8
        buf[off + 3] = lo & 0xFF
        return off + 4

    def _reserve(self, hi, lo):
        # The counter reached its durable mark: store a new one first.
        if hi == 0xFFFF and lo == 0xFFFF:
            raise InvocationCounterError("transmit invocation counter exhausted")
        mark = ((hi << 16) | lo) + self.tx_reserve
        if mark > _TX_LAST:
            mark = _TX_LAST
        rec = bytearray(_TX_SIZE)
        rec[0] = _VERSION
        rec[1] = mark >> 24
        rec[2] = (mark >> 16) & 0xFF
        rec[3] = (mark >> 8) & 0xFF
        rec[4] = mark & 0xFF
        try:
            self.storage.put(STORE_TX, _seal(rec))
        except Exception as e:  # any storage failure: refuse the value
            raise InvocationCounterError("cannot store the invocation counter reservation: %r" % (e,))
        self._mk_hi = mark >> 16
        self._mk_lo = mark & 0xFFFF

    # -------------------------------------------------- receive counters

    def _slot(self, key_id, buf, off):
        # index of the slot of (key_id, title at buf[off:]), or -1
        # (the 8 bytes compared inline: run twice per ciphered request)
        rk = self._rx_key
        t = self._rx_title
        for j in range(len(rk)):
            if rk[j] == key_id:
                p = TITLE_SIZE * j
                if (t[p] == buf[off] and t[p + 1] == buf[off + 1] and t[p + 2] == buf[off + 2]
                        and t[p + 3] == buf[off + 3] and t[p + 4] == buf[off + 4] and t[p + 5] == buf[off + 5]
                        and t[p + 6] == buf[off + 6] and t[p + 7] == buf[off + 7]):
                    return j
        return -1

    def _new_slot(self, key_id, buf, off):
        if not 0 <= key_id < KEY_COUNT:
            raise ValueError("no key id %d" % key_id)
        rk = self._rx_key
        for j in range(len(rk)):
            if rk[j] < 0:
                rk[j] = key_id
                self._rx_gen[j] = self._gens[key_id]
                p = TITLE_SIZE * j
                t = self._rx_title
                for i in range(TITLE_SIZE):
                    t[p + i] = buf[off + i]
                self._rx_next[j] = self._rx_floor[j] = 0
                self._rx_mark[j] = 0  # nothing stored: the first accept stores it
                return j
        return -1

    def rx_ic(self, key_id, buf, off):
        # The lowest counter an APDU under key_id from the client system
        # title at buf[off:] may carry (0 for a title never seen).
        j = self._slot(key_id, buf, off)
        return self._rx_next[j] if j >= 0 else 0

    def check_rx_ic(self, key_id, buf, off, ic):
        # Whether accept_rx_ic would accept ic (changes nothing; a store it
        # would need may still fail).
        if ic < 0 or ic > 0xFFFFFFFF:
            return False
        j = self._slot(key_id, buf, off)
        if j < 0:
            return -1 in self._rx_key
        return ic >= self._rx_next[j]

    def rx_table_full(self, key_id, buf, off):
        # Whether (key_id, the client title at buf[off:]) has no slot and
        # none is free: the table of client titles is full (rx_slots).
        return self._slot(key_id, buf, off) < 0 and -1 not in self._rx_key

    def accept_rx_ic(self, key_id, buf, off, ic, durable=False):
        # An APDU under key_id from the client system title at buf[off:]
        # (8 bytes) carries counter ic and its tag checked out: True when ic
        # is new (not below the next expected value), and the counter moves
        # past it; False otherwise (nothing changes). True only once the
        # stored mark is above ic (see Persistence above); durable: kept for
        # callers, every accept is durable.
        j = self._accept_slot(key_id, buf, off, ic)
        if j < 0:
            return False
        new = self._slot_was_new
        old = self._rx_next[j]
        if ic < old:
            return False
        old_floor = self._rx_floor[j]
        self._rx_floor[j] = old
        self._rx_next[j] = ic + 1
        return self._after_accept(j, durable, new, old, old_floor)

    def accept_hls_ic(self, key_id, buf, off, ic, durable=False):
        # The counter of an HLS-GMAC f(StoC) (see RECEIVE COUNTERS above):
        # True when ic is not below the floor, and the floor and next move
        # past it; False otherwise (nothing changes).
        j = self._accept_slot(key_id, buf, off, ic)
        if j < 0:
            return False
        new = self._slot_was_new
        old_floor = self._rx_floor[j]
        if ic < old_floor:
            return False
        old = self._rx_next[j]
        n = ic + 1 if ic >= old else old
        self._rx_next[j] = self._rx_floor[j] = n
        return self._after_accept(j, durable, new, old, old_floor)

    def _accept_slot(self, key_id, buf, off, ic):
        # The slot an accept works on: the existing one of (key_id, title),
        # or a free one taken for it (self._slot_was_new says which); -1 when
        # ic is not a 32-bit counter or every slot is taken.
        if ic < 0 or ic > 0xFFFFFFFF:
            return -1
        j = self._slot(key_id, buf, off)
        self._slot_was_new = j < 0
        if j < 0:
            j = self._new_slot(key_id, buf, off)
        return j

    def _after_accept(self, j, durable, new, old, old_floor):
        # The counter moved in RAM; make it durable before saying yes.
        n = self._rx_next[j]
        if n <= self._rx_mark[j]:
            self._rx_dirty = True  # inside the stored reservation
            return True
        # store a new reservation: mark = ic + rx_reserve (>= next), at
        # most 2**32 (the next value after the largest counter)
        m = n - 1 + self.rx_reserve
        if m > _RX_END:
            m = _RX_END
        if self._store_rx(j, m, False):
            if m > n:
                self._rx_dirty = True  # a reservation to give back
            return True
        self._rx_next[j] = old
        self._rx_floor[j] = old_floor
        if new:
            self._rx_key[j] = -1
        return False

    def sync_rx(self):
        # Give back the unused reservations: store the exact next values
        # (e.g. when an association is released; see Persistence above).
        # Returns False when the storage failed (the reservations stay, and
        # are given back on a later sync), True otherwise; never raises.
        if self._rx_dirty:
            if not self._store_rx(-1, 0, True):
                return False
            self._rx_dirty = False
        return True

    def _save_rx_quietly(self):
        # after a key change freed slots: store the table without them, the
        # others exact (on failure the stored slots of the old key are
        # dropped at load anyway)
        if self._store_rx(-1, 0, True):
            self._rx_dirty = False

    def _store_rx(self, slot, value, exact):
        # Store the table: slot `slot` with mark `value`, the others with
        # their marks (exact: their next values). On success the marks are
        # what was stored; on a storage failure nothing changes and False.
        rk = self._rx_key
        try:
            self._put_rx(slot, value, exact)
        except Exception:  # storage failure: the old record stands
            return False
        mk = self._rx_mark
        for j in range(len(rk)):
            if j == slot:
                mk[j] = value
            elif exact:
                mk[j] = self._rx_next[j]
        return True

    def _put_rx(self, slot, value, exact):
        rk = self._rx_key
        n = 0
        for k in rk:
            if k >= 0:
                n += 1
        rec = bytearray(4 + _RX_SLOT_SIZE * n)
        rec[0] = _VERSION
        rec[1] = n
        p = 2
        t = self._rx_title
        for j in range(len(rk)):
            if rk[j] < 0:
                continue
            g = self._rx_gen[j]
            if j == slot:
                v = value
            elif exact:
                v = self._rx_next[j]
            else:
                v = self._rx_mark[j]
            rec[p] = rk[j]
            rec[p + 1] = g >> 8
            rec[p + 2] = g & 0xFF
            rec[p + 3 : p + 11] = t[TITLE_SIZE * j : TITLE_SIZE * j + TITLE_SIZE]
            rec[p + 11] = v >> 32
            rec[p + 12] = (v >> 24) & 0xFF
            rec[p + 13] = (v >> 16) & 0xFF
            rec[p + 14] = (v >> 8) & 0xFF
            rec[p + 15] = v & 0xFF
            p += _RX_SLOT_SIZE
        self.storage.put(STORE_RX, _seal(rec))

    # ------------------------------------------------------------- repr

    def __repr__(self):
        # never the keys: which are set, and public facts only
        names = []
        for i in range(KEY_COUNT):
            if self._keys[i] is not None:
                names.append(_KEY_NAMES[i])
        return "<KeyStore system_title=%s suite=%d policy=0x%02X keys=%s pending=%s tx_ic=%d>" % (
            _hex(self.system_title),
            self.suite,
            self._policy,
            ",".join(names) or "none",
            "yes" if self.pending else "no",
            self.tx_ic,
        )

    __str__ = __repr__


def _hex(b):
    return "".join(["%02X" % x for x in b])
