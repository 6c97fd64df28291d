# Meter definitions on the host: the JSON format's compiler, the module
# writer for boards, `meter show`, and the Gurux XML import. See
# docs/meter-definition.md.
#
#   from dlms_micro_cpython.meterdef import load, build_meters
#   compiled = load("my_meter.json")          # DefinitionError names each fault
#   meters = build_meters(compiled, wall_clock, storage)

from dlms_micro.meterdef.build import Env, build, build_all  # noqa: F401
from dlms_micro_cpython.meterdef.compiler import (  # noqa: F401
    Compiled,
    DefinitionError,
    compile_definition,
    load,
)


def build_meters(compiled, wall_clock=None, storage=None, env=None):
    """The Meters (one per logical device) of a compiled definition:
    wall_clock returns UTC seconds, storage keeps their state (None: RAM
    only), env (a ``dlms_micro.meterdef.build.Env``) gives the objects'
    port hooks. The simulator (SimulatedMeter) builds its meter this way
    and drives it."""
    return build_all(compiled, wall_clock, storage, env)
