# Time values in the core are millisecond tick counts that wrap at 2**30, as
# MicroPython's time.ticks_ms() does; the CPython port passes
# int(time.monotonic() * 1000) & TICKS_MASK. Keeping them below 2**30 keeps
# every time computation in small ints, which allocate nothing on MicroPython.

TICKS_PERIOD = 1 << 30
TICKS_MASK = TICKS_PERIOD - 1
TICKS_HALF = TICKS_PERIOD >> 1


def ticks_diff(new, old):
    # Signed difference new - old, correct across one wrap of the counter.
    d = (new - old) & TICKS_MASK
    if d >= TICKS_HALF:
        # minus TICKS_PERIOD in two steps: 2**30 itself is not a small int
        # on MicroPython and would allocate
        d = d - TICKS_HALF - TICKS_HALF
    return d
