# Helpers shared by the portable tests. These tests run unchanged under pytest
# (CPython) and under real MicroPython (tools/micropython runner), so they use
# plain asserts and functions named test_*; no pytest fixtures or imports.


def raises(exc_type, fn, *args):
    # Call fn(*args) and return the exception it raised; fail if it raised
    # nothing or something else.
    try:
        fn(*args)
    except exc_type as e:
        return e
    raise AssertionError("%s not raised by %r" % (exc_type.__name__, fn))


def unhex(s):
    # bytes from a hex string that may contain spaces
    return bytes.fromhex(s.replace(" ", ""))
