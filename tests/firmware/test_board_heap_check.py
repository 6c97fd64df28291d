# The build's heap check (tools/firmware/build.py check_board_heap, run on
# every `make firmware`): each board boots on the unix firmware it built
# with its keys provisioned, and one that leaves too little heap, or does
# not boot at all, is refused with its figures.

import importlib.util
import os

import pytest
from conftest import REPO, UNIX, need


def _build():
    spec = importlib.util.spec_from_file_location("fw_build", os.path.join(REPO, "tools", "firmware", "build.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_shipped_board_passes_the_build_heap_check():
    need(UNIX)
    b = _build()
    figures = b.check_board_heap(UNIX, b.board_names(b.BOARDS))
    for name, (used, free) in sorted(figures.items()):
        print("build heap check %s: %d B used, %d B free after boot" % (name, used, free))
        assert free >= b.MIN_FREE_AFTER_BOOT


def test_a_board_short_of_heap_is_refused_with_its_figures():
    need(UNIX)
    b = _build()
    with pytest.raises(b.BuildError) as e:
        b.check_board_heap(UNIX, ["esp32c3_battery"], min_free=99 * 1024)
    msg = str(e.value)
    assert msg.startswith("board esp32c3_battery: heap after boot ") and "B free; a board needs 101376 B free" in msg
    assert msg.endswith("refused")
    with pytest.raises(b.BuildError) as e:  # a heap it cannot even boot in
        b.check_board_heap(UNIX, ["esp32_devkitc_modbus_gateway"], heap="40k")
    assert "board esp32_devkitc_modbus_gateway does not boot in a 40k heap" in str(e.value)
    assert "MemoryError" in str(e.value)
