# Where the CPython port keeps a firmware image sent through Image transfer
# (class 18, dlms_micro.cosem.image) and what activating it does.
#
#   sink = FileImageSink("/var/lib/meter", capacity=256 * 1024,
#                        on_activate=version_activator(meter, FIRMWARE_LN, store))
#   state = ImageState(sink, 200, store, "image.state")   # the object's slot
#   restore_version(meter, FIRMWARE_LN, store)             # at boot
#
# FileImageSink keeps the image in one file of the data directory,
# "<name>.part", each block written in place at its offset and synced before
# the class persists its bit, so a transfer resumes after a restart. It
# verifies by the SHA-256 trailer (image.Sha256Trailer: the image's last 32
# bytes are the SHA-256 of the rest). Activation: on_activate(identifier)
# decides (True / False / None as the sink contract says); when it succeeds
# the image is copied to "<name>.active" (atomically). Without on_activate
# activation is refused.
#
# The "firmware" of a CPython meter is its version string: version_activator
# returns an on_activate that makes the image's identification the value of
# a Data object (the demo's 1.0.0.2.0.255 firmware version), so a client
# reads the new version after the activation, and keeps it in the storage
# for restore_version() after a restart.
#
# image_state(storage, on_activate, ...) makes the slot value a meter needs:
# a FileImageSink in the storage's data directory (FileStorage), or the
# core's StorageSink (blocks as records) for any other storage, e.g. the
# demo's MemoryStorage.

import os

from dlms_micro.cosem import base, image

STORE_KEY_VERSION = "firmware.version"
STORE_KEY_STATE = "image.state"
CHUNK = 65536  # bytes read at a time while verifying


class FileImageSink:
    def __init__(self, directory, capacity, on_activate=None, name="image"):
        self.directory = os.path.abspath(directory)
        self.capacity = capacity
        self.on_activate = on_activate
        self.path = os.path.join(self.directory, name + ".part")
        self.active_path = os.path.join(self.directory, name + ".active")
        self.signature = b""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)

    def begin(self, size, block_size):
        # A fresh file of size bytes (zeros until the blocks come).
        try:
            with open(self.path, "wb") as f:
                f.truncate(size)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            return False
        self.signature = b""
        return True

    def write(self, offset, buf, start, n):
        try:
            with open(self.path, "r+b") as f:
                f.seek(offset)
                f.write(memoryview(buf)[start : start + n])
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            return False
        return True

    def verify(self, size):
        self.signature = b""
        chk = image.Sha256Trailer(size)
        try:
            if os.path.getsize(self.path) != size:
                return False
            with open(self.path, "rb") as f:
                while True:
                    data = f.read(CHUNK)
                    if not data:
                        break
                    chk.feed(data)
        except OSError:
            return False
        if not chk.ok():
            return False
        self.signature = bytes(chk.trailer)
        return True

    def activate(self, identifier):
        if self.on_activate is None:
            return False
        ok = self.on_activate(identifier)
        if ok:
            tmp = self.active_path + ".tmp"
            with open(self.path, "rb") as src, open(tmp, "wb") as dst:
                while True:
                    data = src.read(CHUNK)
                    if not data:
                        break
                    dst.write(data)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, self.active_path)
        return ok


def _data_entry(meter, ln):
    # The Data object (class 1) with this logical name and a state slot.
    ln = bytes(ln)
    for e in meter.table:
        if e[base.E_CLASS] == 1 and bytes(e[base.E_LN]) == ln:
            if e[base.E_SLOT] < 0:
                raise ValueError("the Data object %s is a constant: give it a state slot to let activation change it" % _text(ln))
            return e
    raise ValueError("no Data object %s in the table" % _text(ln))


def _text(ln):
    return ".".join(str(b) for b in ln)


def version_activator(meter, ln, storage=None, key=STORE_KEY_VERSION):
    # on_activate for a sink: the image's identification becomes the value
    # of the Data object ln (an octet-string, within its param's length
    # bound); stored under key when storage is given. An identification too
    # long for the object refuses the activation.
    e = _data_entry(meter, ln)
    p = e[base.E_PARAM]
    hi = p[2] if p is not None and len(p) > 2 else (p[1] if p is not None and len(p) == 2 else None)

    def activate(identifier):
        ident = bytes(identifier)
        if hi is not None and len(ident) > hi:
            return False
        meter.state[e[base.E_SLOT]] = ident
        if storage is not None:
            storage.put(key, ident)
        return True

    return activate


def restore_version(meter, ln, storage, key=STORE_KEY_VERSION):
    # At boot: the version an earlier activation stored, if any. True when
    # one was restored.
    v = storage.get(key) if storage is not None else None
    if v is None:
        return False
    meter.state[_data_entry(meter, ln)[base.E_SLOT]] = bytes(v)
    return True


def image_state(storage, on_activate, capacity=1024 * 1024, block_size=200, key=STORE_KEY_STATE):
    # The ImageState of an Image transfer object, its sink chosen for the
    # storage: a file in a FileStorage's directory, else the storage's
    # records.
    directory = getattr(storage, "directory", None)
    if directory is not None:
        sink = FileImageSink(directory, capacity, on_activate)
    else:
        sink = image.StorageSink(storage, capacity, block_size, "img", on_activate)
    return image.ImageState(sink, block_size, storage, key)
