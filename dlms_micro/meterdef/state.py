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
#   5 demand register  (period, number_of_periods)
#   6 register activ.  (registers ((class_id, ln), ...), masks ((name,
#                      index bytes), ...), active mask, persist)
#   9 script table     None (a static table, the scripts are its param), or
#                      (room, persist) for a table clients may SET
#   11 special days    (entries ((index, date5, day_id), ...), persist)
#   18 image transfer  (block_size, capacity, max_id, enabled, persist):
#                      env.image_state(entry, args) makes the state when the
#                      port gives it; else the blocks go to env.storage
#                      (persist) or to RAM
#   20 activity cal.   (name, seasons, weeks, days, persist)
#   21 register mon.   ((class_id, ln, attr), thresholds, actions)
#   22 single action   (script_ln, selector, type, times, persist)
#   40 push setup      (service, destination or None (env.push_destination),
#                      message, randomisation, retries, delay, windows)
#   62 compact data    ()
#   70 disconnect      (control_mode, control_state, persist)
#   71 limiter         ((class_id, ln, attr), normal, emergency, min_over,
#                      min_under, over_action (ln, sel), under_action,
#                      group_ids)
#   111 account        (payment_mode, status, low_credit_threshold,
#                      clearance_threshold, next_credit_available_threshold,
#                      persist); env.prepaid True starts it in prepayment
#   112 credit         (amount, status, priority, warning, limit, preset,
#                      available_threshold)
#   113 charge         (charge_per_unit, total_amount_paid,
#                      total_amount_remaining)
#   115 token gateway  (persist,): its key is env.token_key

from dlms_micro.cosem.base import E_CLASS, E_LN, E_PARAM


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
    p = entry[E_PARAM]
    if cid == 5:
        from dlms_micro.cosem import demand

        return demand.initial_state(p, args[0], args[1])
    if cid == 6:
        from dlms_micro.cosem import tariff

        k = stored_key(entry, env, args[3])
        return [tariff.RegisterActivation(p, args[0], args[1], args[2], _storage(env, k), k)]
    if cid == 9:
        from dlms_micro.cosem import script

        k = stored_key(entry, env, args[1])
        return [script.ScriptStore(args[0], p, _storage(env, k), k)]
    if cid == 11:
        from dlms_micro.cosem import tariff

        k = stored_key(entry, env, args[1])
        return [tariff.SpecialDays(p, args[0], _storage(env, k), k)]
    if cid == 18:
        return [_image_state(entry, args, env)]
    if cid == 20:
        from dlms_micro.cosem import tariff

        k = stored_key(entry, env, args[4])
        return [tariff.Calendar(p, args[0], args[1], args[2], args[3], _storage(env, k), k)]
    if cid == 21:
        from dlms_micro.cosem import monitor

        return [monitor.MonitorState(p, args[0], args[1], args[2])]
    if cid == 22:
        from dlms_micro.cosem import schedule

        k = stored_key(entry, env, args[4])
        return [schedule.Schedule(p, args[0], args[1], args[2], args[3], _storage(env, k), k)]
    if cid == 40:
        from dlms_micro.cosem import push

        dest = args[1]
        if dest is None:
            dest = env.push_destination or b""
            if len(dest) > p[2]:
                raise ValueError("push destination %r is longer than the %d bytes the Push setup keeps"
                                 % (dest, p[2]))
        return [push.PushState(p, args[0], dest, args[2], args[3], args[4], args[5], args[6])]
    if cid == 62:
        from dlms_micro.cosem import compact

        return [compact.CompactBuffer(p)]
    if cid == 70:
        from dlms_micro.cosem import disconnect

        k = stored_key(entry, env, args[2])
        return disconnect.initial_state(args[0], args[1], _storage(env, k), k)
    if cid == 71:
        from dlms_micro.cosem import monitor

        return [monitor.LimiterState(p, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7])]
    if cid == 111:
        from dlms_micro.cosem import prepay

        k = stored_key(entry, env, args[5])
        mode = prepay.PREPAYMENT_MODE if env.prepaid else args[0]
        return prepay.account_state(mode, args[1], args[2], args[3], args[4], _storage(env, k), k)
    if cid == 112:
        from dlms_micro.cosem import prepay

        return prepay.credit_state(args[0], args[1], args[2], args[3], args[4], args[5], args[6])
    if cid == 113:
        from dlms_micro.cosem import prepay

        return prepay.charge_state(args[0], args[1], args[2])
    if cid == 115:
        from dlms_micro.cosem import token_gateway

        k = stored_key(entry, env, args[0])
        key = env.token_key
        if key is None:
            # no key: a random one nobody shares, so every token is refused
            # (authentication failure), as no vending system can make one
            key = _random_key()
        return [token_gateway.TokenState(key, _storage(env, k), k)]
    raise ValueError("no state maker for class %d" % cid)


def _storage(env, k):
    return env.storage if k is not None else None


class _RamStore:
    # The storage interface in RAM (an Image transfer's blocks when the
    # port gives neither a hook nor a storage): records as they arrive.
    def __init__(self):
        self.d = {}

    def get(self, key):
        return self.d.get(key)

    def put(self, key, value):
        self.d[key] = bytes(value)

    def delete(self, key):
        if key in self.d:
            del self.d[key]


def _image_state(entry, args, env):
    # args: (block_size, capacity, max_id, enabled, persist)
    if env.image_state is not None:
        return env.image_state(entry, args)
    from dlms_micro.cosem import image

    k = stored_key(entry, env, args[4])
    store = env.storage if k is not None else _RamStore()
    sink = image.StorageSink(store, args[1], args[0], (k or "img") + ".img")
    return image.ImageState(sink, args[0], _storage(env, k), k, args[2], bool(args[3]))


def _random_key():
    try:
        import os

        return os.urandom(16)
    except (ImportError, AttributeError, OSError):
        import random

        return bytes([random.getrandbits(8) for _ in range(16)])
