# The register maps shipped in meters/sources/ load, build a master, and
# are read in as few requests as the meters allow (Eastron: at most 80
# registers a request); every field has a Blue Book unit and, where one is
# given, an OBIS code the stack parses.

import glob
import json
import os

from dlms_micro import obis
from dlms_micro.source import modbus_rtu as mb

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAPS = sorted(glob.glob(os.path.join(REPO, "meters", "sources", "*.json")))


def load(name):
    with open(os.path.join(REPO, "meters", "sources", name)) as f:
        return json.load(f)


def test_every_shipped_map_loads_and_builds():
    assert len(MAPS) >= 2
    for path in MAPS:
        with open(path) as f:
            regmap = json.load(f)
        assert regmap["source"] == "modbus-map/1"
        rows = mb.load_map(regmap)
        m = mb.ModbusMaster([{"slave": 1, "map": regmap}])
        assert len(m.fields) == len(rows)
        for reg in regmap["registers"]:
            if "obis" in reg:
                assert len(obis.parse(reg["obis"])) == 6
        for b in range(m.nblocks):
            assert m._b_count[b] <= 80


def test_eastron_maps_cover_the_issue_quantities_in_few_requests():
    need = {"energy_import", "energy_export", "frequency"}
    sdm630 = mb.ModbusMaster([{"slave": 1, "map": load("eastron_sdm630.json")}])
    sdm120 = mb.ModbusMaster([{"slave": 1, "map": load("eastron_sdm120.json")}])
    assert need | {"voltage_l1", "current_l3", "power_total"} <= set(sdm630.fields)
    assert need | {"voltage", "current", "power"} <= set(sdm120.fields)
    assert (sdm630.nblocks, sdm630._b_count[0]) == (1, 80)
    assert sdm120.nblocks == 2
    i = sdm630.index("energy_import")
    assert (sdm630.scalers[i], sdm630.units[i]) == (0, 30)  # 0.001 kWh = 1 Wh
