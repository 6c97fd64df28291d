# Failed authentications: counted, and a lock-out after too many, so that an
# LLS password (or an HLS key, through f(StoC)) cannot be guessed at line
# speed (issue 18). A meter sits on a bus anyone can plug into: companion
# standards ask meters to count failed associations, to log them as an event
# and to make the counter readable.
#
#   guard = AuthGuard(len(meter.roles))       # one per meter; the Channel
#   meter.auth_guard = guard                  # makes a default one if none
#   guard.locked(role, now)  -> 0 or the ms left of the role's lock-out
#   guard.failed(role, now)  -> True when this failure started a lock-out
#   guard.succeeded(role)
#
# WHAT COUNTS as a failed authentication: an AARQ for a configured client SAP
# refused with authentication-failure (LLS password wrong or missing, HLS
# CtoS missing or of a bad size), and an HLS f(StoC) that does not verify
# (reply_to_HLS_authentication refused). Counted per role (= per client SAP,
# one role per SAP) here, and per connection or line by the Channel
# (Channel.auth_failures, and the same lock-out per channel: cycling SAPs on
# one line does not help either).
#
# POLICY. After max_failures consecutive failures (default 3) the role is
# locked out for lockout_ms (default 60 s); each further lock-out without a
# success in between doubles it, up to max_lockout_ms (default 1 h). A
# success (LLS accepted, f(StoC) verified) clears the role's consecutive
# failures and its doubling. While a role is locked out every AARQ for it is
# answered with the standard AARE rejection (rejected-transient, acse-
# service-user, authentication-failure: "try again later") without looking at
# the password, so a lock-out cannot be raced. This trades a denial of service
# of one SAP by someone who can reach the port (he can lock the legitimate
# client out for max_lockout_ms at most) for the secret: with 3 tries per
# minute at first and 3 per hour after ~6 lock-outs, an 8-digit LLS password
# takes decades instead of hours. Locks are in RAM: a power cycle clears them
# (an attacker who can cut the meter's supply is at the meter).
#
# READABLE COUNTER AND EVENT. total (failures since boot, all roles) and
# failures[role] (per role, since boot) are kept here; when state/total_slot
# are given the total is written to state[total_slot] on every failure, for a
# Data object (class 1) on that slot, and role_slots[role] (a slot or -1)
# gets the role's count. event(code) (the meter's event log, e.g. the demo's
# log_event) is called with event_code when a lock-out starts: once per
# lock-out, not per failure, so a flood of wrong passwords cannot push the
# rest of a 500-row event log out.
#
# Portable and allocation-free: fixed lists sized at construction, small
# ints, times as ticks (dlms_micro.ticks).

from dlms_micro.ticks import TICKS_MASK, ticks_diff

MAX_FAILURES = 3
LOCKOUT_MS = 60000
MAX_LOCKOUT_MS = 3600000
_LOCKOUT_LIMIT = 1 << 28  # ticks_diff is exact within half of 2**30 ms


class AuthGuard:
    def __init__(
        self,
        roles,
        max_failures=MAX_FAILURES,
        lockout_ms=LOCKOUT_MS,
        max_lockout_ms=MAX_LOCKOUT_MS,
        state=None,
        total_slot=-1,
        role_slots=None,
        event=None,
        event_code=0,
    ):
        # roles: how many roles (associations) the meter has. max_failures
        # >= 1 (consecutive failures that lock a role out); lockout_ms 1 ..
        # max_lockout_ms <= 2**28.
        if max_failures < 1 or not 1 <= lockout_ms <= max_lockout_ms <= _LOCKOUT_LIMIT:
            raise ValueError("max_failures >= 1, 1 <= lockout_ms <= max_lockout_ms <= 2**28")
        self.max_failures = max_failures
        self.lockout_ms = lockout_ms
        self.max_lockout_ms = max_lockout_ms
        self.failures = [0] * roles  # per role, since boot
        self._run = [0] * roles  # consecutive failures
        self._level = [0] * roles  # lock-outs since the last success
        self._until = [0] * roles  # tick at which the lock-out ends
        self._locked = [0] * roles
        self.total = 0
        self.lockouts = 0
        self.state = state
        self.total_slot = total_slot
        self.role_slots = role_slots
        self.event = event
        self.event_code = event_code

    def locked(self, role, now):
        # The ms left of the role's lock-out, 0 when it may authenticate.
        if role < 0 or role >= len(self._locked) or not self._locked[role]:
            return 0
        left = ticks_diff(self._until[role], now)
        if left <= 0:
            self._locked[role] = 0
            return 0
        return left

    def failed(self, role, now):
        # A failed authentication of the role; True when it starts a
        # lock-out (the caller logs it).
        if role < 0 or role >= len(self._run):
            return False
        self.failures[role] += 1
        self.total += 1
        st = self.state
        if st is not None:
            if self.total_slot >= 0:
                st[self.total_slot] = self.total
            rs = self.role_slots
            if rs is not None and role < len(rs) and rs[role] >= 0:
                st[rs[role]] = self.failures[role]
        n = self._run[role] + 1
        if n < self.max_failures:
            self._run[role] = n
            return False
        self._run[role] = 0
        self._until[role] = self._start(now, self._level[role])
        self._locked[role] = 1
        if self._level[role] < 16:
            self._level[role] += 1
        self.lockouts += 1
        if self.event is not None:
            self.event(self.event_code)
        return True

    def succeeded(self, role):
        if 0 <= role < len(self._run):
            self._run[role] = 0
            self._level[role] = 0

    def lockout_for(self, level):
        # The length of the lock-out number level + 1 (ms).
        d = self.lockout_ms
        m = self.max_lockout_ms
        while level > 0 and d < m:
            d += d
            level -= 1
        return d if d < m else m

    def _start(self, now, level):
        return (now + self.lockout_for(level)) & TICKS_MASK


class LineGuard:
    # The same policy for one connection or line (a Channel): consecutive
    # failures on it, whatever the SAP, lock the channel's AARQs out.
    def __init__(self, guard):
        self.guard = guard
        self.failures = 0  # on this channel, since it opened
        self._run = 0
        self._level = 0
        self._until = 0
        self._locked = 0

    def locked(self, now):
        if not self._locked:
            return 0
        left = ticks_diff(self._until, now)
        if left <= 0:
            self._locked = 0
            return 0
        return left

    def failed(self, now):
        self.failures += 1
        n = self._run + 1
        g = self.guard
        if n < g.max_failures:
            self._run = n
            return False
        self._run = 0
        self._until = (now + g.lockout_for(self._level)) & TICKS_MASK
        self._locked = 1
        if self._level < 16:
            self._level += 1
        return True

    def succeeded(self):
        self._run = 0
        self._level = 0
