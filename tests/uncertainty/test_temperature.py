"""Temperature scaling of preference probabilities."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
from scipy.special import expit

import rewardhedge.uncertainty.calibration as cal_mod
from rewardhedge.uncertainty.calibration import TemperatureScaling, fit_temperature


def _draw(t_true: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, 3.0, n)
    y = (rng.uniform(size=n) < expit(m / t_true)).astype(float)
    return m, y


def test_recovers_known_temperature():
    m, y = _draw(2.5, 20_000, seed=0)
    assert fit_temperature(m, y).temperature == pytest.approx(2.5, abs=0.25)
    assert TemperatureScaling.fit(m, y).temperature == pytest.approx(2.5, abs=0.25)


def test_calibrated_data_gives_temperature_near_one():
    m, y = _draw(1.0, 20_000, seed=1)
    assert fit_temperature(m, y).temperature == pytest.approx(1.0, abs=0.1)


def test_fit_lowers_nll_on_miscalibrated_data():
    m, y = _draw(0.4, 5_000, seed=2)  # model margins too small: underconfident
    fitted = fit_temperature(m, y)
    assert fitted.temperature < 1.0
    assert fitted.nll(m, y) < TemperatureScaling().nll(m, y) - 0.01
    m, y = _draw(3.0, 5_000, seed=3)  # overconfident
    fitted = fit_temperature(m, y)
    assert fitted.temperature > 1.0
    assert fitted.nll(m, y) < TemperatureScaling().nll(m, y) - 0.01


def test_orientation_does_not_matter():
    m, y = _draw(2.0, 3_000, seed=4)
    t = fit_temperature(m, y).temperature
    assert fit_temperature(-m, 1 - y).temperature == pytest.approx(t, rel=1e-4)
    both = fit_temperature(np.concatenate([m, -m]), np.concatenate([y, 1 - y]))
    assert both.temperature == pytest.approx(t, rel=1e-4)
    # Chosen-first pairs: all outcomes 1, margins signed accordingly.
    chosen_first = fit_temperature(np.where(y == 1, m, -m), np.ones_like(y))
    assert chosen_first.temperature == pytest.approx(t, rel=1e-4)


def test_apply_keeps_order_and_scales_logits():
    ts = TemperatureScaling(2.0)
    m = np.array([-3.0, -1.0, 0.0, 0.5, 4.0])
    p = ts.apply(m)
    assert p == pytest.approx(expit(m / 2.0))
    assert np.all(np.diff(p) > 0)
    assert p[2] == 0.5
    assert TemperatureScaling().apply(m) == pytest.approx(expit(m))


def test_degenerate_inputs():
    assert fit_temperature([0.0, 0.0], [1, 0]).temperature == 1.0
    separated = fit_temperature([1.0, 2.0, -1.0], [1, 1, 0])  # NLL falls as T → 0
    assert separated.temperature == pytest.approx(0.01, rel=1e-3)
    assert fit_temperature([1.0, -1.0], [True, False]).temperature == pytest.approx(0.01, rel=1e-3)


@pytest.mark.parametrize(
    ("margins", "outcomes", "match"),
    [
        ([0.1, 0.2], [1], "differ in length"),
        ([], [], "empty"),
        ([0.1, 0.2], [1, 0.5], "binary"),
        ([0.1, 0.2], [1, 2], "binary"),
        ([0.1, np.nan], [1, 0], "non-finite"),
        ([[0.1, 0.2]], [[1, 0]], "shape"),
    ],
)
def test_invalid_input_is_refused(margins, outcomes, match):
    with pytest.raises(ValueError, match=match):
        fit_temperature(margins, outcomes)


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf"), True, "2"])
def test_invalid_temperature_is_refused(t):
    with pytest.raises(ValueError, match="temperature"):
        TemperatureScaling(t)


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature([1.0], [1], bounds=(0.0, 10.0))


def test_dict_round_trip_through_json():
    ts = TemperatureScaling(2.718281828459045)
    d = json.loads(json.dumps(ts.to_dict()))
    assert d == {"kind": "temperature_scaling", "temperature": 2.718281828459045}
    assert TemperatureScaling.from_dict(d) == ts
    assert TemperatureScaling(3).temperature == 3.0
    assert isinstance(TemperatureScaling(3).temperature, float)


def test_from_dict_refuses_wrong_content():
    with pytest.raises(ValueError, match="kind"):
        TemperatureScaling.from_dict({"kind": "isotonic", "temperature": 1.0})
    with pytest.raises(ValueError, match="missing"):
        TemperatureScaling.from_dict({"kind": "temperature_scaling"})
    with pytest.raises(ValueError, match="temperature"):
        TemperatureScaling.from_dict({"kind": "temperature_scaling", "temperature": -2})


def test_docstring_examples():
    result = doctest.testmod(cal_mod)
    assert result.attempted > 0
    assert result.failed == 0


def test_member_logits_recover_known_temperature() -> None:
    """With (m, n) member logits the fit targets P = mean_k σ(m_k / T)."""
    rng = np.random.default_rng(3)
    base = rng.normal(0.0, 3.0, 20_000)
    members = base[None, :] + rng.normal(0.0, 0.5, (4, base.size))
    true_t = 2.5
    p = expit(members / true_t).mean(axis=0)
    y = rng.uniform(size=p.size) < p
    fitted = TemperatureScaling.fit(members, y)
    assert abs(fitted.temperature - true_t) < 0.1
    np.testing.assert_allclose(fitted.apply(members), expit(members / fitted.temperature).mean(0))
    one = TemperatureScaling.fit(members[:1], y)
    assert one.temperature == TemperatureScaling.fit(members[0], y).temperature
