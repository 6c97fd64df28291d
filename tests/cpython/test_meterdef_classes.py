# The definition format's class compilers beyond the core classes
# (meterdef/classes_more.py) and their state makers (meterdef/state.py):
# each class compiles from JSON, the meter built from it answers a GET of
# every attribute, the module `meter compile` writes builds the same meter,
# and bad keys or values are errors naming the object and the key.

import copy
import types

import pytest

from dlms_micro.cosem import base, common, prepay, push, token_gateway
from dlms_micro_cpython.simulator import MemoryStorage
from dlms_micro_cpython.meterdef import DefinitionError, Env, build_all, compile_definition
from dlms_micro_cpython.meterdef import classes as C
from dlms_micro_cpython.meterdef import classes_more  # noqa: F401 - registers the classes
from dlms_micro_cpython.meterdef import emit

NOW = 1780000000


def ln(text):
    return bytes(int(x) for x in text.split("."))


# objects the samples refer to
BASE = [
    {"class": "clock", "obis": "0.0.1.0.0.255"},
    {"class": "register", "obis": "1.0.1.8.0.255", "unit": "Wh"},
    {"class": "register", "obis": "1.0.1.7.0.255", "unit": "W"},
    {"class": "register", "obis": "1.0.32.7.0.255", "type": "long-unsigned", "value": 2300, "scaler": -1,
     "unit": "V"},
    {"class": "register", "obis": "1.0.1.8.1.255", "unit": "Wh"},
    {"class": "register", "obis": "1.0.1.8.2.255", "unit": "Wh"},
    {"class": "extended-register", "obis": "1.0.1.6.0.255", "unit": "W"},
    {"class": "data", "obis": "0.0.96.11.0.255", "type": "unsigned", "value": 0, "write": ["public"]},
    {"class": "script-table", "obis": "0.0.10.0.1.255", "scripts": [
        {"script_identifier": 1, "actions": [
            {"service": "write-attribute", "target": "0.0.96.11.0.255:2", "type": "unsigned", "value": 1}]},
        {"script_identifier": 2, "actions": [
            {"service": "execute-method", "target": "1.0.1.6.0.255:1"}]}]},
    {"class": "disconnect-control", "obis": "0.0.96.3.10.255", "control_mode": 5},
    {"class": "credit", "obis": "0.0.19.10.0.255", "credit_type": "token", "current_credit_amount": 1000},
    {"class": "charge", "obis": "0.0.19.20.0.255",
     "unit_charge_active": {"commodity": "1.0.1.8.0.255:2", "commodity_scale": -3, "price_scale": 0,
                            "charge_table": [{"index": {"hex": "01"}, "charge_per_unit": 25}]}},
    {"class": "account", "obis": "0.0.19.0.0.255", "credit_reference_list": ["0.0.19.10.0.255"],
     "charge_reference_list": ["0.0.19.20.0.255"], "disconnect_control": "0.0.96.3.10.255",
     "currency": {"currency_name": "EUR", "currency_scale": -2, "currency_unit": "monetary"}},
    {"class": "special-days-table", "obis": "0.0.11.0.0.255",
     "entries": [{"index": 1, "specialday_date": "*-12-25", "day_id": 2}]},
]

# one valid object of each class (the BASE's own classes included)
SAMPLES = {
    "demand-register": {"class": "demand-register", "obis": "1.0.1.4.0.255", "scaler": 0, "unit": "W",
                        "period": 60, "number_of_periods": 15, "energy_register": "1.0.1.8.0.255",
                        "maximum_demand_register": "1.0.1.6.0.255"},
    "register-activation": {"class": "register-activation", "obis": "0.0.14.0.1.255",
                            "register_assignment": ["1.0.1.8.1.255", "1.0.1.8.2.255"],
                            "mask_list": [{"mask_name": "T1", "index_list": [1]},
                                          {"mask_name": "T2", "index_list": [2]}],
                            "active_mask": "T2"},
    "script-table": {"class": "script-table", "obis": "0.0.10.0.100.255", "write": ["public"], "scripts": [
        {"script_identifier": 7, "actions": [
            {"service": "write-attribute", "target": "0.0.96.11.0.255:2", "type": "unsigned", "value": 9},
            {"service": "execute-method", "target": "0.0.96.3.10.255:1", "type": "integer", "value": 0},
            {"service": "execute-method", "target": "0.0.10.0.1.255:1", "type": "long-unsigned", "value": 1},
            {"service": "execute-method", "target": "1.0.1.6.0.255:1", "type": None}]}]},
    "special-days-table": None,  # in BASE
    "image-transfer": {"class": "image-transfer", "obis": "0.0.44.0.0.255", "image_block_size": 128,
                       "max_image_size": 4096},
    "activity-calendar": {
        "class": "activity-calendar", "obis": "0.0.13.0.0.255", "calendar_name": "CAL1",
        "season_profile": [{"season_profile_name": "ALL", "season_start": "*-01-01T00:00:00", "week_name": "W"}],
        "week_profile_table": [{"week_profile_name": "W", "monday": 1, "tuesday": 1, "wednesday": 1,
                                "thursday": 1, "friday": 1, "saturday": 2, "sunday": 2}],
        "day_profile_table": [
            {"day_id": 1, "day_schedule": [
                {"start_time": "00:00", "script_logical_name": "0.0.10.0.1.255", "script_selector": 2},
                {"start_time": "08:00:00", "script_logical_name": "0.0.10.0.1.255", "script_selector": 1}]},
            {"day_id": 2, "day_schedule": [
                {"start_time": "00:00", "script_logical_name": "0.0.10.0.1.255", "script_selector": 2}]}]},
    "register-monitor": {"class": "register-monitor", "obis": "0.0.16.1.0.255",
                         "monitored_value": "1.0.32.7.0.255:2", "thresholds": [2070, 2530],
                         "action_sets": [{"action_up": "0.0.10.0.1.255:1", "action_down": "0.0.10.0.1.255:2"},
                                         {"action_up": "0.0.10.0.1.255:1"}]},
    "single-action-schedule": {"class": "single-action-schedule", "obis": "0.0.15.0.0.255",
                               "executed_script": "0.0.10.0.1.255:2", "type": 1,
                               "execution_time": [{"time": "00:00:00", "date": "*-*-01"}]},
    "push-setup": {"class": "push-setup", "obis": "0.0.25.9.0.255",
                   "push_object_list": ["0.0.25.9.0.255:1", "0.0.1.0.0.255:2", "1.0.1.8.0.255:2"],
                   "send_destination_and_method": {"transport_service": "tcp", "destination": "127.0.0.1:4059",
                                                   "message": "a-xdr"},
                   "communication_window": [{"start_time": "*-*-*T22:00:00", "end_time": "*-*-*T02:00:00"}],
                   "randomisation_start_interval": 10, "number_of_retries": 2, "repetition_delay": 60},
    "compact-data": {"class": "compact-data", "obis": "0.0.66.0.1.255",
                     "capture_objects": ["0.0.1.0.0.255:2", "1.0.1.8.0.255:2"], "template_id": 3,
                     "capture_method": "on-read"},
    "disconnect-control": None,
    "limiter": {"class": "limiter", "obis": "0.0.17.0.0.255", "monitored_value": "1.0.1.7.0.255:2",
                "threshold_normal": 6000, "threshold_emergency": 3000, "min_over_threshold_duration": 60,
                "min_under_threshold_duration": 120, "emergency_profile_group_id_list": [1, 2],
                "action_over_threshold": "0.0.10.0.1.255:1", "action_under_threshold": "0.0.10.0.1.255:2"},
    "account": None,
    "credit": None,
    "charge": None,
    "token-gateway": {"class": "token-gateway", "obis": "0.0.19.40.0.255", "account": "0.0.19.0.0.255"},
}


def definition(*objects, base_objects=None):
    return {"meter": "dlms-micro/1", "name": "DMI0000000000001", "serial_number": "1",
            "associations": {"public": {"client_sap": 16, "authentication": "none"}},
            "objects": copy.deepcopy(BASE if base_objects is None else base_objects) + [copy.deepcopy(o)
                                                                                       for o in objects]}


def build(d, env=None, storage=None):
    c = compile_definition(d)
    return c, build_all(c, lambda: NOW, storage, env)[0]


def find(meter, text):
    e = meter.find_ln(ln(text), 0)
    assert e is not None, text
    return e


def read(meter, e, attr):
    ctx = base.Context(meter)
    buf = bytearray(2048)
    res = common.get_attribute(ctx, e, attr, buf, 0, len(buf))
    return res, bytes(buf[0 : ctx.pos])


def errors(d):
    with pytest.raises(DefinitionError) as ei:
        compile_definition(d)
    return ei.value.errors


def test_every_class_of_the_stack_has_a_compiler():
    for name in SAMPLES:
        assert name in C.BY_NAME, name
    for cid, spec in C.CLASSES.items():
        ic = spec.handler_instance()
        assert (ic.class_id, ic.version) == (cid, spec.version), spec.name
        assert len(spec.attributes) == ic.attribute_count, spec.name
        assert len(spec.methods) == ic.method_count, spec.name
        assert all(2 <= a <= ic.attribute_count for a in spec.writable), spec.name


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_class_compiles_and_every_attribute_answers_a_get(name):
    sample = SAMPLES[name]
    c, m = build(definition(*([sample] if sample else [])))
    spec = C.CLASSES[C.BY_NAME[name]]
    entries = [e for e in m.table if e[base.E_CLASS] == spec.class_id]
    assert entries
    common.check_table(m)
    for e in entries:
        for attr in range(1, len(spec.attributes) + 1):
            res, out = read(m, e, attr)
            assert res == base.SUCCESS, (name, attr, res)
            assert out, (name, attr)


@pytest.mark.parametrize("name", sorted(n for n in SAMPLES if SAMPLES[n]))
def test_compiled_module_builds_the_same_meter(name):
    # `meter compile` writes constants; the board's build of them is the
    # meter the JSON builds
    c, m = build(definition(SAMPLES[name]))
    ns = {}
    exec(compile(emit.module_text(c), "<compiled>", "exec"), ns)
    mod = types.SimpleNamespace(**{k: v for k, v in ns.items() if k.isupper()})
    m2 = build_all(mod, lambda: NOW)[0]
    assert m2.table == m.table
    for e in m.table:
        if e[base.E_CLASS] == 15:
            continue
        ic = m.handlers[e[base.E_IC]]
        for attr in range(2, ic.attribute_count + 1):
            assert read(m2, e, attr) == read(m, e, attr), (e[base.E_LN], attr)


def test_values_reach_the_attributes():
    objs = [o for o in SAMPLES.values() if o]
    _c, m = build(definition(*objs), Env(token_key=b"k" * 16))
    # demand register: period, number_of_periods
    dr = find(m, "1.0.1.4.0.255")
    assert read(m, dr, 8)[1] == bytes((6, 0, 0, 0, 60))
    assert read(m, dr, 9)[1] == bytes((18, 0, 15))
    assert read(m, dr, 4)[1] == bytes((2, 2, 15, 0, 22, 27))
    # register activation: active mask T2
    assert read(m, find(m, "0.0.14.0.1.255"), 4)[1] == b"\x09\x02T2"
    # special days table: 25 December, day 2
    assert read(m, find(m, "0.0.11.0.0.255"), 2)[1] == bytes.fromhex("010102031200010905ffff0c19ff1102")
    # activity calendar: the name, active and passive
    cal = find(m, "0.0.13.0.0.255")
    assert read(m, cal, 2)[1] == read(m, cal, 6)[1] == b"\x09\x04CAL1"
    # register monitor: thresholds of the voltage's type (long-unsigned)
    assert read(m, find(m, "0.0.16.1.0.255"), 2)[1] == bytes.fromhex("0102120816 12 09e2".replace(" ", ""))
    # single action schedule: script 2 of 0.0.10.0.1.255, type 1
    sas = find(m, "0.0.15.0.0.255")
    assert read(m, sas, 2)[1] == bytes.fromhex("0202090600000a0001ff120002")
    assert read(m, sas, 3)[1] == b"\x16\x01"
    # push setup: destination and settings
    ps = find(m, "0.0.25.9.0.255")
    assert read(m, ps, 3)[1] == b"\x02\x03\x16\x00\x09\x0e127.0.0.1:4059\x16\x00"
    assert read(m, ps, 5)[1] == b"\x12\x00\x0a"
    assert read(m, ps, 6)[1] == b"\x11\x02"
    # compact data: template id and capture method
    cd = find(m, "0.0.66.0.1.255")
    assert read(m, cd, 4)[1] == b"\x11\x03"
    assert read(m, cd, 6)[1] == b"\x16\x01"
    # disconnect control: mode 5, connected
    dc = find(m, "0.0.96.3.10.255")
    assert read(m, dc, 4)[1] == b"\x16\x05"
    assert read(m, dc, 3)[1] == b"\x16\x01"
    # limiter: thresholds and durations
    lim = find(m, "0.0.17.0.0.255")
    assert read(m, lim, 4)[1] == bytes((6, 0, 0, 0x17, 0x70))
    assert read(m, lim, 7)[1] == bytes((6, 0, 0, 0, 120))
    # credit and account
    assert read(m, find(m, "0.0.19.10.0.255"), 2)[1] == bytes((5, 0, 0, 3, 0xE8))
    acc = find(m, "0.0.19.0.0.255")
    assert read(m, acc, 15)[1] == b"\x02\x03\x0c\x03EUR\x0f\xfe\x16\x02"
    # image transfer: block size
    assert read(m, find(m, "0.0.44.0.0.255"), 2)[1] == bytes((6, 0, 0, 0, 128))


def test_script_table_is_static_unless_written():
    _c, m = build(definition())
    assert find(m, "0.0.10.0.1.255")[base.E_SLOT] == -1
    _c, m = build(definition(SAMPLES["script-table"]))
    st = find(m, "0.0.10.0.100.255")
    assert st[base.E_SLOT] >= 0  # a ScriptStore: clients may SET the scripts
    # the store starts with the definition's scripts
    from dlms_micro.cosem import script

    buf = bytearray(256)
    n = script.enc_scripts(buf, 0, st[base.E_PARAM])
    assert read(m, st, 2)[1] == bytes(buf[0:n])


def test_scripts_run_their_actions():
    from dlms_micro.cosem import script

    _c, m = build(definition())
    assert script.execute(m, ln("0.0.10.0.1.255"), 1)
    assert m.state[find(m, "0.0.96.11.0.255")[base.E_SLOT]] == 1


def test_env_gives_push_destination_token_key_and_prepaid_mode():
    d = definition(SAMPLES["token-gateway"], {"class": "push-setup", "obis": "0.0.25.9.0.255",
                                              "push_object_list": ["0.0.1.0.0.255:2"]})
    _c, m = build(d, Env(push_destination=b"10.0.0.1:4059", token_key=b"K" * 16, prepaid=True))
    assert push.state_of(m, find(m, "0.0.25.9.0.255")).destination() == b"10.0.0.1:4059"
    acc = find(m, "0.0.19.0.0.255")
    assert m.state[acc[base.E_SLOT] + prepay.A_MODE] == prepay.PREPAYMENT_MODE
    tg = find(m, "0.0.19.40.0.255")
    tok = token_gateway.make_token(b"K" * 16, 1, 500)
    assert token_gateway.enter(m, tg, tok, 0, len(tok)) == token_gateway.EXECUTION_OK
    # without a key every token is refused
    _c, m = build(d, Env())
    tg = find(m, "0.0.19.40.0.255")
    assert token_gateway.enter(m, tg, tok, 0, len(tok)) == token_gateway.AUTHENTICATION_FAILURE
    acc = find(m, "0.0.19.0.0.255")
    assert m.state[acc[base.E_SLOT] + prepay.A_MODE] == prepay.CREDIT_MODE


def test_image_state_hook_of_the_port():
    seen = []

    def hook(entry, args):
        from dlms_micro.cosem import image
        from dlms_micro.meterdef import state

        seen.append((entry[base.E_LN], args))
        return image.ImageState(image.StorageSink(state._RamStore(), args[1], args[0]), args[0])

    _c, m = build(definition(SAMPLES["image-transfer"]), Env(image_state=hook))
    assert seen == [(ln("0.0.44.0.0.255"), (128, 4096, 64, 1, 1))]


def test_persisted_state_comes_back_after_a_restart():
    from dlms_micro.cosem import disconnect, tariff

    st = MemoryStorage()
    d = definition(SAMPLES["register-activation"])
    _c, m = build(d, storage=st)
    assert disconnect.remote_disconnect(m, find(m, "0.0.96.3.10.255")) == base.SUCCESS
    ra = m.state[find(m, "0.0.14.0.1.255")[base.E_SLOT]]
    assert ra.set_active(b"T1", 0, 2)
    ra.save()
    _c, m = build(d, storage=st)  # the restart
    dc = find(m, "0.0.96.3.10.255")
    disconnect.restore(m, dc)
    assert disconnect.control_state(m, dc) == disconnect.DISCONNECTED
    assert read(m, find(m, "0.0.14.0.1.255"), 4)[1] == b"\x09\x02T1"
    assert "0.0.96.3.10.255" in st._d and "0.0.14.0.1.255" in st._d
    # persist false: nothing stored
    st2 = MemoryStorage()
    d = definition(dict(SAMPLES["register-activation"], persist=False))
    build(d, storage=st2)
    assert "0.0.14.0.1.255" not in st2._d
    assert tariff  # imported for the record's class


# (object, changes, the key the error names, a piece of its message)
BAD = [
    ("demand-register", {"energy_register": "1.0.99.99.0.255"}, "energy_register", "is not in the table"),
    ("demand-register", {"energy_register": "0.0.1.0.0.255"}, "energy_register", "is a clock"),
    ("demand-register", {"number_of_periods": 0}, "number_of_periods", "an integer 1..65535"),
    ("demand-register", {"max_periods": 2}, "max_periods", "less than number_of_periods"),
    ("register-activation", {"mask_list": [{"mask_name": "T1", "index_list": [3]}]},
     "mask_list[0].index_list[0]", "not a position"),
    ("register-activation", {"active_mask": "T9"}, "active_mask", "not a mask_name"),
    ("register-activation", {"register_assignment": ["0.0.96.11.0.255"]}, "register_assignment[0]",
     "is a data"),
    ("script-table", {"scripts": [{"script_identifier": 1, "actions": [
        {"service": "write-attribute", "target": "1.0.99.99.0.255:2", "type": "unsigned", "value": 1}]}]},
     "scripts[0].actions[0].target", "1.0.99.99.0.255 is not in the table"),
    ("script-table", {"scripts": [{"script_identifier": 1, "actions": [
        {"service": "execute-method", "target": "0.0.96.3.10.255:3"}]}]},
     "scripts[0].actions[0].target", "has no method 3"),
    ("script-table", {"scripts": [{"script_identifier": 1, "actions": [
        {"service": "write", "target": "0.0.96.3.10.255:3"}]}]},
     "scripts[0].actions[0].service", "write-attribute"),
    ("script-table", {"scripts": [{"script_identifier": 1, "actions": [
        {"service": "write-attribute", "target": "0.0.96.11.0.255:2", "type": "unsigned", "value": 300}]}]},
     "scripts[0].actions[0].value", "out of range"),
    ("special-days-table", {"entries": [{"index": 1, "specialday_date": "*-13-01", "day_id": 2}]},
     "entries[0].specialday_date", "not 1..12"),
    ("activity-calendar", {"season_profile": [{"season_profile_name": "A", "season_start": "*-01-01T00:00:00",
                                               "week_name": "X"}]}, "season_profile[0].week_name",
     "not a week_profile_name"),
    ("activity-calendar", {"day_profile_table": [{"day_id": 1, "day_schedule": [
        {"start_time": "00:00", "script_logical_name": "0.0.10.0.1.255", "script_selector": 9}]}]},
     "day_profile_table[0].day_schedule[0]", "has no script 9"),
    ("activity-calendar", {"calendar_name_passive": "OTHER"}, "calendar_name_passive", "same content"),
    ("activity-calendar", {"season_profile": [
        {"season_profile_name": "B", "season_start": "*-06-01T00:00:00", "week_name": "W"},
        {"season_profile_name": "A", "season_start": "*-01-01T00:00:00", "week_name": "W"}]},
     "season_profile", "season_start order"),
    ("activity-calendar", {"day_profile_table": [
        {"day_id": 1, "day_schedule": [
            {"start_time": "08:00", "script_logical_name": "0.0.10.0.1.255", "script_selector": 2},
            {"start_time": "07:00", "script_logical_name": "0.0.10.0.1.255", "script_selector": 2}]},
        {"day_id": 2, "day_schedule": []}]}, "day_profile_table", "strictly increasing"),
    ("activity-calendar", {"season_profile_room": 8}, "season_profile_room", "less than"),
    ("register-monitor", {"thresholds": ["high"]}, "thresholds[0]", "integer"),
    ("register-monitor", {"monitored_value": "1.0.99.99.0.255:2"}, "monitored_value", "not in the table"),
    ("register-monitor", {"action_sets": [{"action_up": "1.0.1.8.0.255:1"}]}, "action_sets[0].action_up",
     "not a script table"),
    ("single-action-schedule", {"executed_script": "1.0.1.8.0.255:1"}, "executed_script",
     "is a register, not a script table"),
    ("single-action-schedule", {"type": 2}, "execution_time", "do not obey type 2"),
    ("single-action-schedule", {"execution_time": [{"time": "25:00", "date": "*-*-01"}]},
     "execution_time[0].time", "not 0..23"),
    ("push-setup", {"push_object_list": ["1.0.1.8.0.255"]}, "push_object_list[0]", "is not a reference"),
    ("push-setup", {"send_destination_and_method": {"transport_service": "smtp"}},
     "send_destination_and_method.transport_service", "\"tcp\" or \"hdlc\""),
    ("push-setup", {"max_destination_length": 4}, "max_destination_length", "less than"),
    ("compact-data", {"capture_objects": []}, "capture_objects", "non-empty"),
    ("compact-data", {"capture_method": "sometimes"}, "capture_method", "invoke, on-read"),
    ("disconnect-control", {"control_mode": 7}, "control_mode", "0..6"),
    ("disconnect-control", {"control_state": "open"}, "control_state", "disconnected"),
    ("limiter", {"action_over_threshold": "0.0.10.0.1.255:9"}, "action_over_threshold", "has no script 9"),
    ("limiter", {"threshold_normal": -1}, "threshold_normal", "out of range"),
    ("account", {"credit_reference_list": ["1.0.1.8.0.255"]}, "credit_reference_list[0]", "not a credit"),
    ("account", {"token_gateway_configuration": [{"credit_reference": "0.0.19.10.0.255",
                                                  "token_proportion": 50}]},
     "token_gateway_configuration", "add up to 50%"),
    ("credit", {"credit_configuration": "12"}, "credit_configuration", "bit-string of 5 bits"),
    ("credit", {"credit_status": "gone"}, "credit_status", "enabled"),
    ("charge", {"unit_charge_active": {"commodity": "1.0.1.8.0.255:2", "commodity_scale": 0, "price_scale": 0,
                                       "charge_table": []}}, "unit_charge_active.charge_table", "one element"),
    ("token-gateway", {"account": "0.0.19.10.0.255"}, "account", "not an account"),
    ("image-transfer", {"image_block_size": 0}, "image_block_size", "1..65535"),
]


def _object(name):
    o = SAMPLES[name]
    if o is None:
        o = [b for b in BASE if b["class"] == name][0]
    return o


def _with(name, changes):
    o = dict(copy.deepcopy(_object(name)), **changes)
    others = [b for b in BASE if b["obis"] != o["obis"]]
    return definition(o, base_objects=others), o


@pytest.mark.parametrize("name,changes,key,piece", BAD, ids=["%s-%s" % (b[0], b[2]) for b in BAD])
def test_bad_values_are_errors_naming_object_and_key(name, changes, key, piece):
    d, o = _with(name, changes)
    errs = errors(d)
    want = "(%s %s): %s: " % (name, o["obis"], key)
    hits = [e for e in errs if want in e]
    assert hits, errs
    assert any(piece in e for e in hits), hits


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_unknown_keys_are_errors(name):
    d, o = _with(name, {"colour": "blue"})
    errs = errors(d)
    assert any("(%s %s): colour: unknown key for %s" % (name, o["obis"], name) in e for e in errs), errs
