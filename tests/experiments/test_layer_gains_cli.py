"""Per-layer gains through the CLI flags, the stored method and the gain sweep."""

import json

from fac_lens import FacConfig
from fac_lens.cli import _gain, _gain_grid
from fac_lens.experiments.methods import Method
from fac_lens.experiments.store import run_id_for
from fac_lens.experiments.sweeps import gain_grid


def test_cli_values():
    assert _gain("1.2") == 1.2
    assert _gain("1.1,1.2,1.3") == (1.1, 1.2, 1.3)
    assert _gain_grid("1.1,1.2") == [1.1, 1.2]
    assert _gain_grid("1.1,1.2;1.3,1.4") == [(1.1, 1.2), (1.3, 1.4)]


def test_method_round_trip_and_scalar_key():
    base = FacConfig(l_perc=1, l_reas=2, tau_perc=0.2, tau_reas=0.1, g_perc=1.16, g_reas=1.3)
    layered = base.replace(g_perc=(1.1, 1.2, 1.3))
    for config in (base, layered):
        stored = json.loads(json.dumps(Method("dynamic", config).to_dict()))
        assert Method.from_dict(stored).config == config
    # a scalar config is keyed by exactly its old JSON (g_perc a plain number)
    as_dict = Method("dynamic", base).to_dict()
    assert json.dumps(as_dict["g_perc"]) == "1.16"
    assert run_id_for("m", "d", as_dict, {}) != run_id_for("m", "d", Method("dynamic", layered).to_dict(), {})
    assert "g=[1.1,1.2,1.3]/1.3" in Method("dynamic", layered).label()


def test_gain_sweep_takes_per_layer_settings():
    base = FacConfig(l_perc=1, l_reas=2, tau_perc=0.2, tau_reas=0.1)
    settings = gain_grid(base, "dynamic", [(1.1, 1.2, 1.3), 1.2], [1.3])
    assert [s.method.config.g_perc for s in settings] == [(1.1, 1.2, 1.3), 1.2]
