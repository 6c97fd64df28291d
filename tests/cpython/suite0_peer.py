# A client's side of security suite 0, built on the `cryptography` package
# and nothing of dlms_micro, for CPython tests of dlms_micro.security.suite0:
# it protects requests and unprotects responses independently of the code
# under test. Test-only; never imported by the package.

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TAG_LEN = 12


def gcm_encrypt(key, iv, aad, plaintext):
    # (ciphertext, 12-byte tag)
    enc = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    ct = enc.update(plaintext) + enc.finalize()
    return ct, enc.tag[:TAG_LEN]


def gcm_decrypt(key, iv, aad, ciphertext, tag):
    # plaintext, or None when the tag does not authenticate
    dec = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=TAG_LEN)).decryptor()
    dec.authenticate_additional_data(aad)
    try:
        return dec.update(ciphertext) + dec.finalize()
    except InvalidTag:
        return None


def axdr_len(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


def seal(sc, title, ic, ek, ak, apdu):
    # SC || IC || content [|| tag] for a security control byte sc
    iv = title + ic.to_bytes(4, "big")
    level = sc & 0x30
    if level == 0x30:
        ct, tag = gcm_encrypt(ek, iv, bytes([sc]) + ak, apdu)
        body = ct + tag
    elif level == 0x20:
        body = gcm_encrypt(ek, iv, b"", apdu)[0]
    else:
        body = apdu + gcm_encrypt(ek, iv, bytes([sc]) + ak + apdu, b"")[1]
    return bytes([sc]) + ic.to_bytes(4, "big") + body


def protect(tag, sc, title, ic, ek, ak, apdu, general=False):
    # A protected APDU: tag, [08 title,] length, SC, IC, content, [tag]
    content = seal(sc, title, ic, ek, ak, apdu)
    head = bytes([tag])
    if general:
        head += b"\x08" + title
    return head + axdr_len(len(content)) + content


def read_len(data, p):
    n = data[p]
    if n < 0x80:
        return n, p + 1
    if n == 0x81:
        return data[p + 1], p + 2
    assert n == 0x82
    return (data[p + 1] << 8) | data[p + 2], p + 3


def unprotect(data, ek, ak, title=None):
    # (tag, title, sc, ic, plaintext) of a protected APDU, plaintext None when
    # it does not authenticate; title: the sender's, for glo-/ded- forms.
    tag = data[0]
    p = 1
    if tag in (0xDB, 0xDC):
        assert data[1] == 8
        title = bytes(data[2:10])
        p = 10
    n, p = read_len(data, p)
    assert p + n == len(data), "length field disagrees"
    sc = data[p]
    ic = int.from_bytes(data[p + 1 : p + 5], "big")
    body = bytes(data[p + 5 :])
    iv = title + ic.to_bytes(4, "big")
    level = sc & 0x30
    if level == 0x30:
        pt = gcm_decrypt(ek, iv, bytes([sc]) + ak, body[:-TAG_LEN], body[-TAG_LEN:])
    elif level == 0x20:
        pt = gcm_encrypt(ek, iv, b"", body)[0]
    else:
        pt = body[:-TAG_LEN]
        if gcm_decrypt(ek, iv, bytes([sc]) + ak + pt, b"", body[-TAG_LEN:]) is None:
            pt = None
    return tag, title, sc, ic, pt
