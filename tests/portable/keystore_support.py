# Helpers for the key store and Security setup tests: an in-memory storage
# with the FileStorage interface that can fail or "lose power" at a chosen
# write, and the records a port would find after years of service.
# Portable (pytest and MicroPython).

from dlms_micro.security import keys as ks

TITLE = b"DMI\x00\x00\xbc\x61\x4e"  # server system title
CLIENT_A = b"CLI\x00\x00\x00\x00\x01"
CLIENT_B = b"CLI\x00\x00\x00\x00\x02"
# Green Book example keys
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
# demo KEK of these tests: the KEK of RFC 3394 section 4.1
KEK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")


class PowerCut(Exception):
    # the write in progress never reached the flash; the meter stops
    pass


class MemStorage:
    # get/put/delete/keys like FileStorage. A put is atomic: it either
    # happens whole or (failing) not at all. cut_at = n: the n-th put from
    # now raises PowerCut without writing; fail = True: every put raises
    # OSError without writing.
    def __init__(self, data=None):
        self.data = dict(data) if data else {}
        self.puts = 0
        self.cut_at = -1
        self.fail = False

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        if self.fail:
            raise OSError(5)
        if self.cut_at == 0:
            self.cut_at = -1
            raise PowerCut()
        if self.cut_at > 0:
            self.cut_at -= 1
        self.data[key] = bytes(value)
        self.puts += 1

    def delete(self, key):
        if key in self.data:
            del self.data[key]

    def keys(self):
        return sorted(self.data)


def store(storage=None, **kw):
    # a key store on storage (new MemStorage if None) with the example keys
    if storage is None:
        storage = MemStorage()
    args = {"ek": EK, "ak": AK, "kek": KEK}
    for k in kw:
        args[k] = kw[k]
    return ks.KeyStore(storage, TITLE, **args)


def tx_record(mark):
    # the "sec.tx" record a meter leaves with this durable mark
    rec = bytearray(7)
    rec[0] = 1
    rec[1] = mark >> 24
    rec[2] = (mark >> 16) & 0xFF
    rec[3] = (mark >> 8) & 0xFF
    rec[4] = mark & 0xFF
    return bytes(ks._seal(rec))
