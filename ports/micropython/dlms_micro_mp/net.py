# The board's network link (Wi-Fi through network.WLAN, Ethernet through
# network.LAN) as a port of dlms_micro_mp.loop.Loop: step(now) drives the
# join and never blocks, so a network that is slow, away or refusing never
# holds up RS-485 or the IR port. Once the link is up it runs the ports that
# need it (the TCP wrapper and HDLC-over-TCP listeners, dlms_micro_mp.tcp),
# made by make_ports() at the first join and kept across reconnects.
#
#   link = NetLink(wifi_join(wlan, ssid, password), wlan.isconnected,
#                  make_ports=lambda: (TcpPort(...), TcpPort(...)), log=log)
#   loop = Loop((uart_port, link))
#
# Joining: join() starts it (WLAN.connect returns at once on the ESP32);
# up() polls. A join not up within timeout_ms fails: leave() is called, and
# the next try waits backoff_ms, doubled after each failure up to
# max_backoff_ms (1 s, 2 s, 4 s ... 64 s), back to the first after a
# success. One log line per failed try and per change of state. A link
# that drops is noticed within check_ms and joined again at once.
# Time: at each join the board syncs its RTC by NTP (ntp_sync; board file
# "network": {"ntp": false} turns it off).
# Credentials: wifi_credentials(storage) reads the "net.wifi" record that
# tools/provision.py --wifi-ssid writes (never the meter definition, never a
# board file); the password is never logged.

from dlms_micro.ticks import ticks_diff

DOWN = 0
JOINING = 1
UP = 2
STORE_WIFI = "net.wifi"  # ssid, 0x00, password (UTF-8)


class NetLink:
    def __init__(self, join, up, leave=None, make_ports=None, log=None, name="wifi", timeout_ms=15000,
                 backoff_ms=1000, max_backoff_ms=64000, check_ms=1000, on_up=None):
        # on_up(): called at each join (the board's NTP sync)
        self.on_up = on_up
        self.join = join
        self.up = up
        self.leave = leave
        self.make_ports = make_ports
        self.log = log
        self.name = name
        self.timeout_ms = timeout_ms
        self.first_backoff = backoff_ms
        self.backoff_ms = backoff_ms
        self.max_backoff_ms = max_backoff_ms
        self.check_ms = check_ms
        self.state = DOWN
        self.next_at = None  # ticks of the next try (None: now)
        self.since = 0  # ticks the join started / the last check
        self.ports = ()
        self.failures = 0
        self.joins = 0

    def step(self, now):
        busy = False
        st = self.state
        if st == DOWN:
            if self.next_at is None or ticks_diff(now, self.next_at) >= 0:
                self.state = JOINING
                self.since = now
                try:
                    self.join()
                except OSError as e:  # the driver refused at once: a failed try
                    self._failed(now, "join refused (%s)" % (e,))
                return True
            return False
        if st == JOINING:
            if self.up():
                self.state = UP
                self.since = now
                self.joins += 1
                self.backoff_ms = self.first_backoff
                self._log("%s: up" % self.name)
                if not self.ports and self.make_ports is not None:
                    self.ports = tuple(self.make_ports())
                if self.on_up is not None:
                    self.on_up()
                return True
            if ticks_diff(now, self.since) >= self.timeout_ms:
                self._failed(now, "not joined within %d ms" % self.timeout_ms)
                return True
            return False
        # UP: the ports run; the link is looked at every check_ms
        for p in self.ports:
            if p.step(now):
                busy = True
        if ticks_diff(now, self.since) >= self.check_ms:
            self.since = now
            if not self.up():
                self.state = DOWN
                self.next_at = None
                self._log("%s: link lost, joining again" % self.name)
                return True
        return busy

    def idle(self, loop, now, ms=10):
        # the listeners' wait while up (a socket wakes it), else a nap
        if self.state == UP and self.ports and hasattr(self.ports[0], "idle"):
            self.ports[0].idle(loop, now, ms)

    def _failed(self, now, why):
        self.failures += 1
        if self.leave is not None:
            try:
                self.leave()
            except OSError:
                pass
        wait = self.backoff_ms
        self.next_at = now + wait
        self.backoff_ms = min(wait * 2, self.max_backoff_ms)
        self.state = DOWN
        self._log("%s: %s; next try in %d s" % (self.name, why, wait // 1000))

    def _log(self, msg):
        if self.log is not None:
            self.log(msg)


def wifi_credentials(storage):
    # (ssid, password) from the provisioned record, or None
    if storage is None:
        return None
    rec = storage.get(STORE_WIFI)
    if rec is None:
        return None
    i = bytes(rec).find(b"\x00")
    if i <= 0:
        return None
    return bytes(rec[:i]).decode(), bytes(rec[i + 1 :]).decode()


def wifi_record(ssid, password):
    # the "net.wifi" record for ssid and password
    s = ssid.encode()
    if not s or b"\x00" in s or len(s) > 32:
        raise ValueError("an SSID is 1..32 bytes")
    p = password.encode()
    if b"\x00" in p or len(p) > 64:
        raise ValueError("a Wi-Fi password is at most 64 bytes")
    return s + b"\x00" + p


def wifi_join(wlan, ssid, password):
    # join() for NetLink: network.WLAN(network.STA_IF) activated, connect
    # started (it returns at once; NetLink polls isconnected)
    def join():
        wlan.active(True)
        wlan.connect(ssid, password)

    return join


def wifi_link(storage, make_ports, log=None, network=None):
    # A NetLink over the station interface with the provisioned
    # credentials, or None (logged) when there are none.
    cred = wifi_credentials(storage)
    if cred is None:
        if log is not None:
            log("wifi: no credentials provisioned (tools/provision.py --wifi-ssid): no network channel")
        return None
    nw = network if network is not None else _network()
    wlan = nw.WLAN(nw.STA_IF)
    return NetLink(wifi_join(wlan, cred[0], cred[1]), wlan.isconnected, wlan.disconnect, make_ports, log)


def lan_link(cfg, make_ports, log=None, network=None, pin=None):
    # A NetLink over Ethernet (network.LAN) with the board file's
    # "ethernet": {"mdc", "mdio", "phy_type" (e.g. "LAN8720"), "phy_addr",
    # "power" (pin, optional)}.
    nw = network if network is not None else _network()
    if pin is None:
        import machine

        pin = machine.Pin
    kw = {"mdc": pin(cfg["mdc"]), "mdio": pin(cfg["mdio"]),
          "phy_type": getattr(nw, "PHY_" + cfg.get("phy_type", "LAN8720")), "phy_addr": cfg.get("phy_addr", 0)}
    if cfg.get("power") is not None:
        kw["power"] = pin(cfg["power"])
    lan = nw.LAN(**kw)
    return NetLink(lambda: lan.active(True), lan.isconnected, lambda: lan.active(False), make_ports, log,
                   name="ethernet")


def _network():
    import network

    return network


def board_link(cfg, meter, storage, log, make_channel_wrapper, make_channel_hdlc, min_free=6 * 1024):
    # The board file's "network": {"kind": "wifi" | "ethernet", "wrapper_port"
    # (4059), "hdlc_port" (4060), "host" ("0.0.0.0"), and for Ethernet the
    # pins of lan_link}: a NetLink that, once up, serves both TCP listeners
    # and sends the meter's pushes; None without a network (or credentials).
    n = cfg.get("network")
    if not n:
        return None

    def make_ports():
        from dlms_micro_mp.push import PushPort
        from dlms_micro_mp.tcp import TcpPort

        host = n.get("host", "0.0.0.0")
        ports = [TcpPort("wrapper", host, n.get("wrapper_port", 4059), make_channel_wrapper, log=log,
                         min_free=min_free)]
        ports.append(TcpPort("hdlc", host, n.get("hdlc_port", 4060), make_channel_hdlc, log=log, poller=ports[0].poller,
                             min_free=min_free))
        if any(e[0] == 40 for e in meter.table):
            ports.append(PushPort(meter, log=log))
        return ports

    if n.get("kind", "wifi") == "ethernet":
        link = lan_link(n, make_ports, log)
    else:
        link = wifi_link(storage, make_ports, log)
    if link is not None and n.get("ntp", True):
        link.on_up = lambda: ntp_sync(meter, log)
    return link


def ntp_sync(meter, log=None, ntptime=None):
    # At each join: the RTC set by NTP (ntptime.settime, ~1 s at most), and
    # the meter's clock offset back to 0, so the meter shows NTP time; the
    # clock keeper (timekeeping) logs the adjustment and stores the offset.
    # A failure changes nothing (logged). Returns True when synced.
    try:
        if ntptime is None:
            import ntptime
        ntptime.settime()
    except Exception as e:  # no answer, no DNS, no module: the clock stays
        if log is not None:
            log("ntp: no sync (%r)" % (e,))
        return False
    from dlms_micro.cosem import base, clock

    for ent in meter.table:
        if ent[base.E_CLASS] == 8 and ent[base.E_SLOT] >= 0:
            meter.state[ent[base.E_SLOT] + clock.S_OFFSET] = 0
            break
    if log is not None:
        log("ntp: clock synced")
    return True
