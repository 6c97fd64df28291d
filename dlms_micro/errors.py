# Project error types. Every decoder failure surfaces as one of these with a
# message that says what went wrong and at which offset; nothing lower-level
# (IndexError, struct.error, ValueError) leaks out of the core's parsers.


class DlmsError(Exception):
    pass


class DecodeError(DlmsError):
    # Malformed, truncated, oversized or contradictory input.
    pass


class EncodeError(DlmsError):
    # A value that cannot be encoded, or a buffer too small for it.
    pass
