# Faults on demand for a fleet (`dlms-micro fleet --fault SPEC`, or a JSON
# file the fleet watches: `--faults FILE`). docs/fleet.md lists them.
#
#   SPEC = KIND[=VALUE]@TARGET
#   TARGET: a meter index "42", a range "10-19", a list "1,5,9", a fraction
#           of the fleet "5%" (meters drawn from the fleet's seed: the same
#           ones every time), or "all"
#   KIND (VALUE):
#     latency=MS       every answer goes MS milliseconds late
#     silent           the meter accepts connections and answers nothing
#     drop=P           each answer frame is lost with probability P (0..1)
#     corrupt=P        each answer frame has one byte flipped with probability P
#     refuse           associations are refused (AARE rejected-transient)
#     wrong-ic         protected answers repeat one invocation counter
#     image-fail       image transfer verification fails
#     drift=S          the meter's clock drifts S seconds per hour (+/-)
#     source-fail      the metering source fails: instantaneous values read
#                      0, profile rows carry AMR status 0x04 (data not valid)
#
#   faults = Faults(seed, log)
#   faults.add(parse("latency=200@5%"))        # ValueError: one line why
#   faults.load_file(path)                     # {"faults": [SPEC, ...]}
#
# Every time a fault acts on a meter it is logged with the meter's index.

import json
import os
import random
import time

from dlms_micro.cosem.base import E_SLOT

KINDS = {
    # kind: whether it takes a value
    "latency": True,
    "silent": False,
    "drop": True,
    "corrupt": True,
    "refuse": False,
    "wrong-ic": False,
    "image-fail": False,
    "drift": True,
    "source-fail": False,
}


class Fault:
    """One parsed fault: kind, value (float or None), target text, and the
    selection (indices set, or fraction, or everything)."""

    __slots__ = ("kind", "value", "target", "indices", "fraction", "spec")

    def __init__(self, kind, value, target, indices, fraction, spec):
        self.kind = kind
        self.value = value
        self.target = target
        self.indices = indices
        self.fraction = fraction
        self.spec = spec


def parse(spec):
    """A fault specification (see SPEC above) -> Fault; ValueError with one
    line saying what is wrong."""
    if not isinstance(spec, str):
        raise ValueError("fault %r: a text KIND[=VALUE]@TARGET is needed" % (spec,))
    what, at, target = spec.strip().partition("@")
    if not at or not target:
        raise ValueError("fault %r: write KIND[=VALUE]@TARGET (e.g. latency=200@5%%, silent@42)" % spec)
    kind, eq, value_text = what.partition("=")
    kind = kind.strip()
    if kind not in KINDS:
        raise ValueError("fault %r: unknown kind %r (one of %s)" % (spec, kind, ", ".join(sorted(KINDS))))
    value = None
    if KINDS[kind]:
        if not eq:
            raise ValueError("fault %r: %s needs a value (%s=...)" % (spec, kind, kind))
        try:
            value = float(value_text)
        except ValueError:
            raise ValueError("fault %r: %r is not a number" % (spec, value_text)) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("fault %r: %r is not a number" % (spec, value_text))
        if kind in ("drop", "corrupt") and not 0.0 <= value <= 1.0:
            raise ValueError("fault %r: a probability 0..1 is needed" % spec)
        if kind == "latency" and not 0.0 <= value <= 600000.0:
            raise ValueError("fault %r: latency 0..600000 ms" % spec)
        if kind == "drift" and not -3600.0 <= value <= 3600.0:
            raise ValueError("fault %r: drift -3600..3600 s per hour" % spec)
    elif eq:
        raise ValueError("fault %r: %s takes no value" % (spec, kind))
    target = target.strip()
    indices = None
    fraction = None
    if target == "all":
        fraction = 1.0
    elif target.endswith("%"):
        try:
            fraction = float(target[:-1]) / 100.0
        except ValueError:
            raise ValueError("fault %r: %r is not a percentage" % (spec, target)) from None
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fault %r: a percentage 0..100 is needed" % spec)
    else:
        indices = set()
        for part in target.split(","):
            lo, dash, hi = part.strip().partition("-")
            try:
                a = int(lo)
                b = int(hi) if dash else a
            except ValueError:
                raise ValueError("fault %r: target %r: meter indices, a range a-b, a list or a percentage" %
                                 (spec, part)) from None
            if a < 0 or b < a or b - a > 1000000:
                raise ValueError("fault %r: target %r: a range a-b with 0 <= a <= b" % (spec, part))
            indices.update(range(a, b + 1))
    return Fault(kind, value, target, indices, fraction, spec.strip())


def _pick(seed, i, fraction):
    # whether meter i is among the fraction of the fleet (deterministic)
    return random.Random("%d fault %d" % (seed, i)).random() < fraction


class Faults:
    """The faults in force. seed: the fleet's seed (which meters a fraction
    picks). log: fn(message). Consulted by the fleet's connections and
    meters; ``active(kind, i)`` -> the Fault acting on meter i, or None."""

    def __init__(self, seed=0, log=None, rng=None):
        self.seed = seed
        self.log = log
        self.cli = []  # from the command line
        self.file_faults = []  # from the watched file
        self.file = None
        self._mtime = None
        self.rng = rng or random.Random()
        self._by_kind = {}
        self._picked = {}  # (fraction, i) -> bool
        self._drift_at = {}  # meter index -> host time of the last drift applied

    def add(self, fault):
        self.cli.append(fault)
        self._index()

    def _index(self):
        by = {}
        for f in self.cli + self.file_faults:
            by.setdefault(f.kind, []).append(f)
        self._by_kind = by

    def watch(self, path):
        """Read faults from this JSON file ({"faults": [SPEC, ...]}) now and
        whenever it changes (poll())."""
        self.file = path
        self.poll()

    def poll(self):
        """Re-read the watched file when it changed; a bad file keeps the
        faults in force and says why (once per change)."""
        if self.file is None:
            return
        try:
            st = os.stat(self.file)
            # a replaced file (fleet fault, an editor) is a new inode even
            # within the file system's timestamp granularity
            mtime = (st.st_mtime_ns, st.st_ino, st.st_size)
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        if mtime is None:
            faults = []
        else:
            try:
                faults = load_file(self.file)
            except ValueError as e:
                if self.log:
                    self.log("faults file %s: %s (faults unchanged)" % (self.file, e))
                return
        self.file_faults = faults
        self._index()
        if self.log:
            self.log("faults file %s: %s" % (self.file, ", ".join(f.spec for f in faults) or "no faults"))

    def active(self, kind, i):
        """The Fault of this kind acting on meter i, or None."""
        fs = self._by_kind.get(kind)
        if not fs:
            return None
        for f in fs:
            if f.indices is not None:
                if i in f.indices:
                    return f
            elif f.fraction >= 1.0:
                return f
            else:
                key = (f.fraction, i)
                hit = self._picked.get(key)
                if hit is None:
                    hit = self._picked[key] = _pick(self.seed, i, f.fraction)
                if hit:
                    return f
        return None

    def any(self):
        return bool(self._by_kind)

    def note(self, i, fault, what):
        """Log that fault acted on meter i."""
        if self.log:
            self.log("meter %d: fault %s: %s" % (i, fault.spec, what))

    def chance(self, p):
        return p > 0.0 and self.rng.random() < p

    # faults the meters themselves consult

    def source_failed(self, i):
        return self.active("source-fail", i) is not None

    def drift_clock(self, meter):
        """Move meter's clock by the drift in force since it was last
        moved (no clock-adjusted event: nobody set it)."""
        i = meter.index
        f = self.active("drift", i)
        now = time.monotonic()
        last = self._drift_at.get(i)
        if f is None:
            self._drift_at.pop(i, None)
            return
        self._drift_at[i] = now
        if last is None or meter._clock_entry is None:
            return
        whole = int(f.value * (now - last) / 3600.0 + self.rng.random())
        if whole:
            st = meter.meter.state
            cs = meter._clock_entry[E_SLOT]
            st[cs] += whole
            meter._clock_offset = st[cs]
            self.note(i, f, "clock moved %+d s" % whole)


def load_file(path):
    """The faults of a JSON file {"faults": [SPEC, ...]}; ValueError."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as e:
        raise ValueError("cannot read it: %s" % (e.strerror or e)) from None
    except ValueError as e:
        raise ValueError("not JSON: %s" % e) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("faults"), list) or set(doc) - {"faults"}:
        raise ValueError('write {"faults": ["KIND[=VALUE]@TARGET", ...]}')
    return [parse(s) for s in doc["faults"]]
