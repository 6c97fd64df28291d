# The pytest plugin (dlms_micro_cpython.pytest_plugin, entry point pytest11):
# inner pytest sessions (pytester) use the dlms_meter and dlms_meter_factory
# fixtures as a head-end's test suite would; and README.md shows the example
# test tests/cpython/test_headend_example.py as it runs.

import asyncio  # noqa: F401  (see below)
import os
import re
import shutil
import socket

import pytest

# The inner sessions run in this process, and pytester drops the modules
# each one imported when it ends: asyncio imported anew by the next one
# would raise a CancelledError class the meter's service.py (imported
# earlier) does not catch. Imported here, they stay for every session.
import dlms_micro_cpython.api  # noqa: F401
import dlms_micro_cpython.demo  # noqa: F401
import dlms_micro_cpython.service  # noqa: F401

pytest_plugins = ["pytester"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL_METER = os.path.join(ROOT, "docs", "examples", "small_meter.json")
EXAMPLE = os.path.join(ROOT, "tests", "cpython", "test_headend_example.py")


def run(pytester, *args):
    # an inner session in which a meter thread's exception is an error
    return pytester.runpytest("-W", "error::pytest.PytestUnhandledThreadExceptionWarning", *args)


def refused(address):
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError:
        return True
    return False


def test_the_plugin_is_installed_by_its_entry_point(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.dlms_meter(definition=None, **serve_kwargs)*"])
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines(["dlms_meter*", "dlms_meter_factory*"])


def test_dlms_meter_serves_the_demo_on_free_ports_for_each_test(pytester):
    pytester.makepyfile(
        """
        import socket

        seen = []

        def test_one(dlms_meter):
            assert dlms_meter.wrapper_address[1] and dlms_meter.hdlc_address[1]
            socket.create_connection(dlms_meter.wrapper_address, timeout=2).close()
            socket.create_connection(dlms_meter.hdlc_address, timeout=2).close()
            assert dlms_meter.value("0.0.42.0.0.255") == b"DMI0000000012345"
            assert dlms_meter.keys["ek"] == bytes(range(16))
            dlms_meter.set_value("1.0.1.8.0.255", 900000)
            seen.append(dlms_meter)

        def test_two(dlms_meter):
            # a meter of its own: the first one is stopped, this one is new
            assert seen[0].wrapper_address is None
            assert dlms_meter is not seen[0]
            assert dlms_meter.value("1.0.1.8.0.255") < 900000
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_the_marker_names_the_definition_and_serve_arguments(pytester):
    shutil.copy(SMALL_METER, pytester.path / "small.json")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dlms_meter(definition="small.json", history=1, pty=True, hdlc_port=None)
        def test_small(dlms_meter):
            assert dlms_meter.value("0.0.42.0.0.255") == b"DMI0000000000042"
            assert len(dlms_meter.profile_rows("1.0.99.1.0.255")) == 96
            assert dlms_meter.pty_path and dlms_meter.hdlc_address is None

        @pytest.mark.dlms_meter("small.json")
        def test_positional(dlms_meter):
            assert dlms_meter.value("0.0.42.0.0.255") == b"DMI0000000000042"

        def test_default(dlms_meter):
            assert dlms_meter.value("0.0.42.0.0.255") == b"DMI0000000012345"
        """
    )
    run(pytester).assert_outcomes(passed=3)


def test_the_ini_option_names_the_default_definition(pytester):
    os.mkdir(pytester.path / "meters")
    shutil.copy(SMALL_METER, pytester.path / "meters" / "small.json")
    pytester.makeini("[pytest]\ndlms_meter_definition = meters/small.json\n")
    pytester.makepyfile(
        """
        import pytest

        def test_from_ini(dlms_meter):
            assert dlms_meter.value("0.0.42.0.0.255") == b"DMI0000000000042"

        @pytest.mark.dlms_meter(definition=None)
        def test_the_marker_wins(dlms_meter):
            assert dlms_meter.value("0.0.42.0.0.255") == b"DMI0000000012345"
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_a_definition_that_does_not_load_fails_the_test_with_its_fault(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dlms_meter(definition="missing.json")
        def test_missing(dlms_meter):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*DefinitionError*missing.json: cannot read it*"])


def test_the_factory_serves_several_meters_and_stops_them_all(pytester):
    shutil.copy(SMALL_METER, pytester.path / "small.json")
    pytester.makepyfile(
        """
        def test_two_meters(dlms_meter_factory, tmp_path_factory):
            a = dlms_meter_factory()
            b = dlms_meter_factory("small.json", serial_number="00000043", name="DMI0000000000043")
            assert a.wrapper_address != b.wrapper_address
            assert a.value("0.0.42.0.0.255") == b"DMI0000000012345"
            assert b.value("0.0.42.0.0.255") == b"DMI0000000000043"
            with open("addresses.txt", "w") as f:
                for m in (a, b):
                    f.write("%s %d\\n" % m.wrapper_address)
        """
    )
    run(pytester).assert_outcomes(passed=1)
    for line in (pytester.path / "addresses.txt").read_text().splitlines():
        host, port = line.split()
        assert refused((host, int(port)))


def test_a_module_scope_serves_one_meter_to_every_test_of_the_module(pytester):
    pytester.makeini("[pytest]\ndlms_meter_scope = module\n")
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.dlms_meter(seed=3)

        def test_set(dlms_meter):
            dlms_meter.set_value("1.0.2.8.0.255", 777000)

        def test_still_there(dlms_meter):
            assert 777000 <= dlms_meter.value("1.0.2.8.0.255") < 777100
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_a_bad_scope_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\ndlms_meter_scope = forever\n")
    pytester.makepyfile("def test_x(dlms_meter):\n    pass\n")
    result = run(pytester)
    result.stdout.fnmatch_lines(["*dlms_meter_scope = 'forever'*"])
    assert result.ret != 0


def test_the_readme_shows_the_example_test_that_runs():
    # README.md "Test your head-end against it" holds the code of
    # test_headend_example.py from `import socket` on, as a python block.
    with open(EXAMPLE, encoding="utf-8") as f:
        code = f.read()
    code = code[code.index("import socket"):]
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("## Test your head-end against it"):]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks and blocks[0] == code
