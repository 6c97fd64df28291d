# Token gateway (class_id 115, version 0), Blue Book 4.6.5: the way credit
# reaches a prepaid meter - a token typed on the keypad or sent by the
# head-end is checked and its amount credited to the Account's credits.
#
#   attribute 2 token                  octet-string: the last token entered
#   attribute 3 token_time             octet-string(12) date-time of entry
#   attribute 4 token_description      array of octet-string: for a token of
#                                      the right format, its id and amount
#                                      (4 bytes each, big-endian); else empty
#   attribute 5 token_delivery_method  enum: 0 remote, 1 local, 2 manual
#   attribute 6 token_status           structure {token_status_code enum,
#                                      token_status_bits bit-string (empty:
#                                      this format has none)}
#   method 1 enter (octet-string)      the head-end's delivery (remote)
# enter(meter, obj, token, method) is the port's (keypad: LOCAL).
#
# token_status_code: 0 format OK, 1 authentication OK, 2 validation OK,
#   3 token execution OK, 4 token format failure, 5 authentication failure,
#   6 validation result failure, 7 token execution result failure, 8 token
#   received and not yet processed. A token ends at 3 or at one of 4..7.
#
# TOKEN FORMAT (this project's demo format "v1", not STS / IEC 62055-41):
#   byte 0       0x01 (format version)
#   bytes 1-4    token id, big-endian, 1..2**32-1
#   bytes 5-8    amount, big-endian, 1..2**31-1, in the Account's currency
#                units (the credits' current_credit_amount units)
#   bytes 9-16   the first 8 bytes of HMAC-SHA256(key, bytes 0-8)
# The key is per meter (TokenState(key, ...)), shared with the vending
# system: make_token() builds a token. A truncated 64-bit HMAC is a real
# authentication code (forging one takes ~2**63 tries), but key management
# and vending are out of scope: a deployment would use STS or a
# utility-specific scheme.
#
# REPLAY PROTECTION. Each token id is accepted once: the gateway keeps the
# highest id accepted and a 32-bit window of the 32 ids below it (as IPsec
# does), so tokens bought in one order and entered in another are accepted
# when they are within 32 of the newest; older ones and every id already
# used are refused (validation failure). With a storage (TokenState(key,
# storage, store_key)), the 8-byte record (highest id, window) is written
# BEFORE the credit is applied, so a power cut in between loses the token's
# credit rather than letting it be entered twice; a storage failure refuses
# the token (execution failure, HARDWARE_FAULT) and credits nothing.
#
# CREDITING. The amount is shared among the credits of the Account's
# token_gateway_configuration by their token_proportion (%; the last one
# takes what rounding leaves), or all to its first credit when that list is
# empty; then prepay.update() runs at once, so a top-up closes the relay
# immediately where the Disconnect control's mode allows it, and
# prepay.save() stores the new credit when the account has a storage.
#
# ACTION results: SUCCESS (executed), TYPE_UNMATCHED (no octet-string),
# OTHER_REASON (format, authentication or validation failure: a replayed
# token), TEMPORARY_FAILURE (the account is not active), HARDWARE_FAULT
# (storage). The token_status tells which.
#
# param: (account logical name,)
# state: 1 slot, a TokenState.

from dlms_micro import axdr
from dlms_micro.cosem import base, common, prepay
from dlms_micro.errors import DecodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 1

FORMAT_OK = const(0)
AUTHENTICATION_OK = const(1)
VALIDATION_OK = const(2)
EXECUTION_OK = const(3)
FORMAT_FAILURE = const(4)
AUTHENTICATION_FAILURE = const(5)
VALIDATION_FAILURE = const(6)
EXECUTION_FAILURE = const(7)
RECEIVED = const(8)

REMOTE = const(0)
LOCAL = const(1)
MANUAL = const(2)

TOKEN_SIZE = const(17)
MAC_SIZE = const(8)
WINDOW = const(32)
MAX_TOKEN = const(64)  # longest token kept in attribute 2

_NO_TIME = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"


def hmac_sha256(key, msg):
    # HMAC-SHA256 (RFC 2104) with hashlib.sha256, which every MicroPython
    # port has (the hmac module is not on the ESP32).
    import hashlib

    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    k = bytearray(64)
    k[0 : len(key)] = key
    for i in range(64):
        k[i] ^= 0x36
    inner = hashlib.sha256(bytes(k))
    inner.update(msg)
    d = inner.digest()
    for i in range(64):
        k[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha256(bytes(k))
    outer.update(d)
    return outer.digest()


def make_token(key, token_id, amount):
    # The 17-byte v1 token for (token_id, amount) under key (vending side).
    if not 0 < token_id <= 0xFFFFFFFF or not 0 < amount <= 0x7FFFFFFF:
        raise ValueError("token id or amount out of range")
    body = bytes([1]) + token_id.to_bytes(4, "big") + amount.to_bytes(4, "big")
    return body + hmac_sha256(key, body)[:MAC_SIZE]


class TokenState:
    # Run-time part of one Token gateway (its state slot).

    def __init__(self, key, storage=None, store_key=None):
        self.key = key
        self.storage = storage
        self.store_key = store_key
        self.token = bytearray(MAX_TOKEN)
        self.n = 0
        self.time = None
        self.status = RECEIVED
        self.method = REMOTE
        self.described = False
        self.fault = False  # the last token failed on the storage
        self.token_id = 0  # of the last token of the right format
        self.amount = 0
        self.last_id = 0  # highest id accepted
        self.window = 0  # bit k: id last_id - 1 - k was accepted
        if storage is not None:
            rec = storage.get(store_key)
            if rec is not None and len(rec) == 8:
                self.last_id = int.from_bytes(rec[0:4], "big")
                self.window = int.from_bytes(rec[4:8], "big")

    def _fresh(self, tid):
        # May token id tid be accepted?
        if tid > self.last_id:
            return True
        k = self.last_id - tid - 1
        return 0 <= k < WINDOW and not (self.window >> k) & 1

    def _accept(self, tid):
        # (last_id, window) after accepting tid
        if tid > self.last_id:
            shift = tid - self.last_id
            if shift > WINDOW:
                return tid, 0
            w = self.window << shift
            if self.last_id:  # the old newest joins the window
                w |= 1 << (shift - 1)
            return tid, w & 0xFFFFFFFF
        return self.last_id, self.window | (1 << (self.last_id - tid - 1))


def enter(meter, obj, buf, start, end, method=REMOTE):
    # Process the token at buf[start:end] delivered by `method`; the
    # token_status_code it ends with.
    ts = meter.state[obj[base.E_SLOT]]
    n = end - start
    keep = n if n <= MAX_TOKEN else MAX_TOKEN
    for i in range(keep):
        ts.token[i] = buf[start + i]
    ts.n = keep
    ts.method = method
    ts.described = False
    ts.fault = False
    from dlms_micro.cosem import clock

    ts.time = clock.now(meter)
    ts.status = _process(meter, obj, ts, buf, start, n)
    if meter.log is not None and ts.status != EXECUTION_OK:
        meter.log("token gateway: token refused (status %d)" % ts.status)
    return ts.status


def _process(meter, obj, ts, buf, start, n):
    if n != TOKEN_SIZE or buf[start] != 1:
        return FORMAT_FAILURE
    tid = int.from_bytes(bytes(buf[start + 1 : start + 5]), "big")
    amount = int.from_bytes(bytes(buf[start + 5 : start + 9]), "big")
    ts.token_id = tid
    ts.amount = amount
    ts.described = True
    mac = hmac_sha256(ts.key, bytes(buf[start : start + 9]))
    diff = 0
    for i in range(MAC_SIZE):
        diff |= mac[i] ^ buf[start + 9 + i]
    if diff:
        return AUTHENTICATION_FAILURE
    if tid == 0 or amount == 0 or amount > 0x7FFFFFFF or not ts._fresh(tid):
        return VALIDATION_FAILURE
    account = meter.find(111, obj[base.E_PARAM][0], 0)
    if account is None or meter.state[account[base.E_SLOT] + prepay.A_STATUS] != prepay.ACTIVE:
        return EXECUTION_FAILURE
    last, window = ts._accept(tid)
    if ts.storage is not None:
        rec = last.to_bytes(4, "big") + window.to_bytes(4, "big")
        try:
            ts.storage.put(ts.store_key, rec)
        except Exception as e:  # noqa: BLE001 - any storage failure refuses the token
            if meter.log is not None:
                meter.log("token gateway: storage failed: %r" % (e,))
            ts.fault = True
            return EXECUTION_FAILURE
    ts.last_id = last
    ts.window = window
    _credit(meter, account, amount)
    return EXECUTION_OK


def _credit(meter, account, amount):
    p = account[base.E_PARAM]
    tg = p[prepay.P_TOKEN_CONFIG]
    credits = prepay.credits_of(meter, account)
    if not tg:
        prepay.add_credit(meter, credits[0], amount)
    else:
        left = amount
        for i in range(len(tg)):
            share = left if i == len(tg) - 1 else amount * tg[i][1] // 100
            left -= share
            c = meter.find(112, tg[i][0], 0)
            if c is not None:
                prepay.add_credit(meter, c, share)
    prepay.update(meter, account)
    prepay.save(meter, account)


class TokenGateway(base.InterfaceClass):
    class_id = 115
    version = 0
    attribute_count = 6
    method_count = 1
    slots = SLOTS

    def get(self, ctx, obj, attr):
        ts = ctx.meter.state[obj[base.E_SLOT]]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            pos = axdr.enc_octet_string(buf, pos, ts.token, 0, ts.n)
        elif attr == 3:
            if ts.time is None:
                pos = axdr.enc_octet_string(buf, pos, _NO_TIME)
            else:
                from dlms_micro.cosem import clock

                pos = clock.enc_local_time(ctx.meter, ts.time, buf, pos)
        elif attr == 4:
            if not ts.described:
                pos = axdr.enc_array(buf, pos, 0)
            else:
                pos = axdr.enc_array(buf, pos, 2)
                pos = _enc_u32(buf, pos, ts.token_id)
                pos = _enc_u32(buf, pos, ts.amount)
        elif attr == 5:
            pos = axdr.enc_enum(buf, pos, ts.method)
        elif attr == 6:
            pos = axdr.enc_structure(buf, pos, 2)
            pos = axdr.enc_enum(buf, pos, ts.status)
            pos = axdr.enc_bit_string(buf, pos, 0, b"")
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def action(self, ctx, obj, method):
        if method != 1:
            return base.READ_WRITE_DENIED
        r = ctx.r
        try:
            n = r.octet_string()
        except DecodeError:
            return base.TYPE_UNMATCHED
        status = enter(ctx.meter, obj, r.buf, r.mark, r.mark + n, REMOTE)
        if status == EXECUTION_OK:
            return base.SUCCESS
        if status == EXECUTION_FAILURE:
            if ctx.meter.state[obj[base.E_SLOT]].fault:
                return base.HARDWARE_FAULT
            return base.TEMPORARY_FAILURE
        return base.OTHER_REASON


def _enc_u32(buf, pos, v):
    pos = axdr.enc_header(buf, pos, axdr.OCTET_STRING, 4)
    return axdr.put_int(buf, pos, axdr.DOUBLE_LONG_UNSIGNED, v)


TOKEN_GATEWAY = TokenGateway()
