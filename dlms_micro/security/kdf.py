# The key derivation function of security suites 1 and 2 (Green Book 9.2.3,
# key agreement): NIST SP 800-56A 5.8.1, the single-step concatenation KDF
# with the suite's hash (SHA-256 for suite 1, SHA-384 for suite 2):
#
#   DerivedKeyingMaterial = leftmost key_len bytes of
#       H(counter(1) || Z || OtherInfo) || H(counter(2) || Z || OtherInfo) ...
#   OtherInfo = AlgorithmID || PartyUInfo || PartyVInfo [|| SuppPubInfo
#               || SuppPrivInfo]
#
# AlgorithmID is the DLMS UA OID contents of the algorithm the derived key
# is for (ALG_* below); PartyUInfo / PartyVInfo are the parties' system
# titles (and, where the scheme says so, more: the caller builds them).

from dlms_micro.security import sha2

# 2.16.756.5.8.3.x (DLMS UA cryptographic algorithm ids) as OID contents
ALG_AES_GCM_128 = b"\x60\x85\x74\x05\x08\x03\x00"
ALG_AES_GCM_256 = b"\x60\x85\x74\x05\x08\x03\x01"
ALG_AES_WRAP_128 = b"\x60\x85\x74\x05\x08\x03\x02"
ALG_AES_WRAP_256 = b"\x60\x85\x74\x05\x08\x03\x03"


def other_info(algorithm_id, party_u, party_v, supp_pub=b"", supp_priv=b""):
    # OtherInfo as the concatenation of its fields (SP 800-56A 5.8.1.2.1)
    return bytes(algorithm_id) + bytes(party_u) + bytes(party_v) + bytes(supp_pub) + bytes(supp_priv)


def concat_kdf(hash_name, z, key_len, info):
    # SP 800-56A 5.8.1: key_len bytes from the shared secret z and OtherInfo
    hl = sha2.DIGEST_SIZE[hash_name]
    reps = (key_len + hl - 1) // hl
    out = b""
    for i in range(1, reps + 1):
        out += sha2.digest(hash_name, i.to_bytes(4, "big"), z, info)
    return out[0:key_len]


def for_suite(suite):
    # (hash, key length of the ciphering key, its AlgorithmID) of a suite
    if suite == 1:
        return "sha256", 16, ALG_AES_GCM_128
    if suite == 2:
        return "sha384", 32, ALG_AES_GCM_256
    raise ValueError("security suite %d has no key agreement" % suite)
