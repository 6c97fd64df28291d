# The run-time state of each object of a compiled meter definition: one
# state maker per interface class, make(entry, args, env) -> the values of
# the object's state slots, in slot order. args are the constants the
# compiler wrote for the object (below, per class); env is build.Env (the
# storage, the store key prefix and the port's hooks). Class modules are
# imported only for the classes a meter has.
#
# args per class (class id: args):
#   1 data             (value,)
#   3 register         (value,)
#   4 extended reg.    (value, status)
#   7 profile generic  (persist, page_rows): persist 1 keeps the rows in the
#                      storage under the object's key (page_rows 0: as many
#                      records as fit 256 bytes)
#   8 clock            (time_zone, dst_begin, dst_end, dst_deviation,
#                      dst_enabled, status)
#   19 IEC local port  the 8 values of attributes 2..9
#   23 IEC HDLC setup  the 8 values of attributes 2..9

from dlms_micro.cosem.base import E_CLASS, E_LN


def key(entry, env):
    # The object's store key: env.prefix + its OBIS code, dotted.
    ln = entry[E_LN]
    return "%s%d.%d.%d.%d.%d.%d" % (env.prefix, ln[0], ln[1], ln[2], ln[3], ln[4], ln[5])


def stored_key(entry, env, persist):
    # The store key when the object persists and there is a storage, else None.
    if persist and env.storage is not None:
        return key(entry, env)
    return None


def make(entry, args, env):
    cid = entry[E_CLASS]
    if cid == 1 or cid == 3:
        return [args[0]]
    if cid == 4:
        return [args[0], args[1], None]
    if cid == 7:
        from dlms_micro.cosem import profile

        k = stored_key(entry, env, args[0])
        if k is None:
            return [profile.ProfileBuffer(entry[6])]
        return [profile.ProfileBuffer(entry[6], env.storage, k, args[1])]
    if cid == 8:
        from dlms_micro.cosem import clock

        return clock.initial_state(args[0], args[1], args[2], args[3], bool(args[4]), args[5])
    if cid == 19 or cid == 23:
        return list(args)
    return _more(cid, entry, args, env)


def _more(cid, entry, args, env):
    # The other classes (tariffs, control, prepayment, pushes, ...).
    raise ValueError("no state maker for class %d" % cid)
