# Power cuts of the real process (issue 18, item 3): `dlms-micro serve`
# under ciphered gurux-dlms traffic and accelerated profile captures,
# SIGKILLed at 50 random instants and restarted on the same data directory
# (tools/bench_power_cuts.py says what each restart checks; run it for more
# cuts). Any violation fails with the seed that reproduces it.

import random
import sys

import pytest
from tool_module import tool_module

CUTS = 50


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_fifty_power_cuts_under_ciphered_load_lose_and_repeat_nothing(tmp_path):
    pytest.importorskip("gurux_dlms")
    cuts = tool_module("bench_power_cuts")
    seed = random.randrange(1 << 30)
    r = cuts.Run(seed)
    try:
        r.run(CUTS, str(tmp_path))
    except cuts.Violation as e:
        pytest.fail("seed %d (python tools/bench_power_cuts.py --cuts %d --seed %d): %s\nmeter log:\n%s"
                    % (seed, CUTS, seed, e, "".join(r.meter_log[-30:])))
    assert r.cuts == CUTS and r.checks == CUTS
    assert len(r.server_ics) == len(set(r.server_ics)) and len(r.server_ics) > 5 * CUTS
    assert r.refused_replays >= CUTS - 2  # an AARQ accepted before the cut, refused after it
    assert r.energy_max["1.0.1.8.0.255"] > 0 and r.entries_max > 0
