# The meter's applications on a board, each there when the board's meter
# definition has its objects (board.build wires them; nothing is imported
# for a class the definition lacks):
#
#   disconnect control (class 70): the relay GPIOs of the board file's
#     "relay" (dlms_micro_mp.relay); the control state restored from the
#     storage at boot and the relay driven to it;
#   time of use: activity calendars (20) and single action schedules (22)
#     ticked once a second on the meter's clock; the metered import energy
#     added to the rate registers of each register activation's (6) active
#     mask; the rate registers kept in the storage record "rates" (lazily,
#     as the energy registers: powerfail.py);
#   prepayment: accounts (111) ticked once a second (their charges collect
#     the consumption, the credits run down; out of credit the account
#     opens the relay through its disconnect control); the account record
#     restored at boot, saved at most every save_ms while it changes and at
#     once when a client changes it (tokens, SETs: cosem/prepay.py).
#
#   app = board.build(cfg, storage)             # app.apps: this module's Apps
#   apps.add_energy(app, wh_import)             # the port's metered energy
# (board.build makes the loop's service tick them once a second, the relay
# pulses and checks every step: Apps.ticker)

from dlms_micro.cosem import base

KEY_RATES = "rates"
KEY_TOKEN = "token.key"  # the Token gateway's key in the storage (16 bytes)
CLASSES = (6, 20, 22, 70, 111)  # the objects that need this module


def env(storage, token_key=None):
    # The meterdef build's Env for a definition with a Token gateway: its
    # key, given or the storage's record (none: every token is refused).
    from dlms_micro.meterdef import build

    if token_key is None and storage is not None:
        k = storage.get(KEY_TOKEN)
        token_key = bytes(k) if k is not None and len(k) == 16 else None
    return build.Env(storage, token_key=token_key)


def wire(cfg, meter, storage, log, pin_class):
    # board.build's: the Apps of the meter with the board file's relays;
    # None when the definition has none of the objects
    if not any(e[0] in CLASSES for e in meter.table):
        log("board: a relay but no Disconnect control in the meter definition: the relay stays as it is")
        return None
    relays = ()
    if cfg.get("relay"):
        from dlms_micro_mp import relay

        relays = relay.make(cfg, pin_class, log)
    return Apps(meter, storage, relays, log)


def add_energy(app, wh_import, wh_export=0):
    # The port's metered energy (whole Wh) on a board.build App: to the
    # import and export registers and to the rate register of the tariff
    # in force.
    st = app.meter.state
    s_imp, s_exp = app.energy_slots
    if s_imp >= 0 and st[s_imp] is not None:
        st[s_imp] = (st[s_imp] + wh_import) & 0xFFFFFFFF
    if s_exp >= 0 and st[s_exp] is not None:
        st[s_exp] = (st[s_exp] + wh_export) & 0xFFFFFFFF
    a = getattr(app, "apps", None)
    if a is not None:
        a.add_energy(wh_import)


class Apps:
    def __init__(self, meter, storage, relays=(), log=None, save_ms=60000):
        self.meter = meter
        self.storage = storage
        self.relays = relays
        self.log = log
        self.save_ms = save_ms
        by = {}
        for e in meter.table:
            c = e[base.E_CLASS]
            if c in (6, 20, 22, 70, 111):
                by.setdefault(c, []).append(e)
        self.activations = tuple(by.get(6, ()))
        self.calendars = tuple(by.get(20, ()))
        self.schedules = tuple(by.get(22, ()))
        self.accounts = tuple(by.get(111, ()))
        self.disconnects = tuple(by.get(70, ()))
        if self.calendars:
            from dlms_micro.cosem import tariff

            self._tariff = tariff
        if self.schedules:
            from dlms_micro.cosem import schedule

            self._schedule = schedule
        if self.accounts:
            from dlms_micro.cosem import prepay

            self._prepay = prepay
        self._saved_at = None
        self._unsaved = False
        self._rates = self._rate_slots()
        self._rec = bytearray(4 * len(self._rates))
        self._last = bytearray(self._rec)  # the record last handed to the storage
        if relays or self.disconnects:
            from dlms_micro_mp import relay as _relay

            meter.relay = _relay.driver(relays, log)
        self._restore()

    def _rate_slots(self):
        # the state slots of the registers every register activation assigns
        m = self.meter
        out = []
        for e in self.activations:
            ra = m.state[e[base.E_SLOT]]
            for i in range(ra.nregs):
                r = i * 8  # class id (2 bytes), logical name (6)
                reg = m.find_ln(ra.regs, r + 2)
                if reg is not None and reg[base.E_SLOT] >= 0 and reg[base.E_CLASS] in (3, 4) \
                        and reg[base.E_SLOT] not in out:
                    out.append(reg[base.E_SLOT])
        return tuple(out)

    def _restore(self):
        m = self.meter
        st = m.state
        if self.storage is not None and self._rates:
            b = self.storage.get(KEY_RATES)
            if b is not None and len(b) == 4 * len(self._rates):
                for i in range(len(self._rates)):
                    st[self._rates[i]] = int.from_bytes(b[4 * i:4 * i + 4], "big")
                self._last[:] = b
        if self.accounts:
            for a in self.accounts:
                self._prepay.restore(m, a)
        if self.disconnects:
            from dlms_micro.cosem import disconnect

            for d in self.disconnects:
                if disconnect.restore(m, d) and self.log is not None:
                    self.log("disconnect control: state %d restored" % disconnect.control_state(m, d))
                disconnect.apply(m, d)

    def add_energy(self, wh):
        # metered import energy (whole Wh) to the rate registers in force
        if wh and self.activations:
            from dlms_micro.cosem import tariff

            for e in self.activations:
                tariff.add_energy(self.meter, e, wh)

    def ticker(self, inner, tick_ms=1000):
        # the loop's service: inner's, then the relays every step and the
        # applications once a second on the meter's clock
        return Ticker(self, inner, tick_ms)

    def service(self, now):
        rs = self.relays
        for i in range(len(rs)):
            r = rs[i]
            r.service(now)
            if r.button is not None and r.pressed():
                self._button(i)

    def _button(self, index):
        # the customer's reconnect button of relay `index`: manual_reconnect
        # of the Disconnect control driving it
        from dlms_micro.cosem import disconnect

        for d in self.disconnects:
            p = d[base.E_PARAM]
            if (p[0] if p else 0) != index:
                continue
            if self._out_of_credit(d):
                done, why = False, "out of credit"
            else:
                done = disconnect.manual_reconnect(self.meter, d)
                why = "state %d" % disconnect.control_state(self.meter, d)
            if self.log is not None:
                self.log("relay %d: button pressed, %s" % (index, "reconnected" if done else
                                                              "no reconnection (%s)" % why))

    def _out_of_credit(self, dc):
        # a prepaid account that drives this disconnect control has no
        # credit left: the button must not close the supply it would open
        # again at its next tick
        if not self.accounts:
            return False
        p = self._prepay
        st = self.meter.state
        for a in self.accounts:
            s = a[base.E_SLOT]
            if a[base.E_PARAM][p.P_DISCONNECT] == dc[base.E_LN] and st[s + p.A_MODE] == p.PREPAYMENT_MODE \
                    and st[s + p.A_AVAILABLE] <= 0:
                return True
        return False

    def tick(self, utc, now=0):
        m = self.meter
        for e in self.calendars:
            self._tariff.tick(m, e, utc)
        for e in self.schedules:
            self._schedule.tick(m, e, utc)
        charged = 0
        for e in self.accounts:
            charged += self._prepay.tick(m, e, utc)
        if charged:
            self._unsaved = True
        self._save(now)

    def _save(self, now):
        from dlms_micro.ticks import ticks_diff

        if self.storage is None:
            return
        if self._rates:
            st = self.meter.state
            rec = self._rec
            for i in range(len(self._rates)):
                v = st[self._rates[i]]
                o = 4 * i
                rec[o] = (v >> 24) & 0xFF
                rec[o + 1] = (v >> 16) & 0xFF
                rec[o + 2] = (v >> 8) & 0xFF
                rec[o + 3] = v & 0xFF
            if rec != self._last:
                self._last[:] = rec
                self.storage.put_lazy(KEY_RATES, bytes(rec))
        if self._unsaved and (self._saved_at is None or ticks_diff(now, self._saved_at) >= self.save_ms):
            self._saved_at = now
            self._unsaved = False
            for e in self.accounts:
                self._prepay.save(self.meter, e)


class Ticker:
    # The loop's service with the applications: inner (board.Service, whose
    # attributes it shows: profiles, keeper...), then the relays every step,
    # the applications once a second on the meter's clock.
    def __init__(self, apps, inner, tick_ms=1000):
        from dlms_micro.cosem import clock

        self.apps = apps
        self.inner = inner
        self.tick_ms = tick_ms
        self._now = clock.now
        self._at = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, now):
        from dlms_micro.ticks import ticks_diff

        self.inner(now)
        apps = self.apps
        apps.service(now)
        if self._at is not None and ticks_diff(now, self._at) < self.tick_ms:
            return
        self._at = now
        apps.tick(int(self._now(apps.meter)), now)  # (a float wall clock: the calendars take whole seconds)
