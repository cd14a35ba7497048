"""``data.phantom.randomise``: off, the generator draws what it drew before, bit for bit; on, each
option changes the volume the way its domain reason says."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from scipy import ndimage

from ichseg.data.config import PhantomSettings
from ichseg.data.phantom import DOMAINS, make_volume, phantom_case
from ichseg.data.phantom.artefacts import band_noise, bias_field, streaks
from ichseg.data.phantom.randomise import BLOOD_AGE, Randomise, gravity_normal
from ichseg.errors import ConfigError

#: every option off: a test turns on the one it checks
QUIET = dict(tissue_hu=False, blood_age=False, contrast=0.0, bias_hu=0.0, bias_gain=0.0, noise_hu=[0.5, 0.5],
             pixel_scale=None, kernel_mm=None, thickness_mm=None, cupping_hu=[0.0, 0.0], streaks_hu=[0.0, 0.0],
             swirl=0.0, fluid_level=0.0, oedema=0.0)


def _pair(subtype: str, on: dict, in_plane: int = 128):
    """The same patient (seed) drawn with every option off and with ``on`` turned on."""
    dom = DOMAINS["instance2022"]
    only = type(dom)(**{**dom.__dict__, "subtype_mix": {subtype: 1.0}})
    for s in range(30):
        vols = [make_volume(np.random.default_rng(s), only, in_plane, 20, positive=True, with_tissue=True,
                            randomise=Randomise.from_config({**QUIET, **opts})) for opts in ({}, on)]
        if sum(les["ml"] for les in vols[0].lesions) > 5:
            return vols
    raise AssertionError(f"no {subtype} lesion over 5 mL drawn")


def test_off_reproduces_the_volumes_drawn_before_bit_for_bit():
    # sha256 of (hu, labels, affine) drawn by the generator before the option existed
    want = {("instance2022", 0): "49e81e57256f", ("bhsd", 1): "3f7f7b27eb4e", ("physionet", 0): "dd0884c3dc7b"}
    for (layout, i), digest in want.items():
        v = phantom_case(layout, 3, i, 96, (8, 10), with_tissue=True, randomise=None)
        assert hashlib.sha256(v.hu.tobytes() + v.labels.tobytes() + v.affine.tobytes()).hexdigest()[:12] == digest


def test_on_keeps_anatomy_and_labels_and_changes_the_image():
    off = phantom_case("instance2022", 3, 0, 96, (8, 10))
    on = phantom_case("instance2022", 3, 0, 96, (8, 10), randomise={**QUIET, "tissue_hu": True})
    assert np.array_equal(on.labels, off.labels) and np.array_equal(on.affine, off.affine)
    assert np.abs(on.hu - off.hu).mean() > 1.0


def test_settings_validate_the_group_in_one_line():
    assert PhantomSettings(randomise={}).randomise == {}
    with pytest.raises(ConfigError, match=r"^data\.phantom\.randomise: unknown key\(s\) swril"):
        PhantomSettings(randomise={"swril": 0.5})
    with pytest.raises(ConfigError, match=r"^data\.phantom\.randomise\.thickness_mm: need low <= high"):
        PhantomSettings(randomise={"thickness_mm": [6, 3]})
    with pytest.raises(ConfigError, match=r"^data\.phantom\.randomise\.oedema: must lie in \[0, 1\]"):
        Randomise.from_config({"oedema": 1.5})


def test_tissue_hu_and_blood_age_are_drawn_from_the_published_ranges():
    r = Randomise.from_config({})
    for s in range(20):
        v = phantom_case("instance2022", s, 0, 48, (4, 4), with_tissue=True, randomise=r)
        for les in v.lesions:
            if les["subtype"] in ("intraparenchymal", "subdural", "epidural"):
                assert min(lo for _, (lo, _) in BLOOD_AGE.values()) <= les["blood_hu"] <= max(hi for _, (_, hi) in BLOOD_AGE.values())
    from ichseg.data.phantom.anatomy import _draw_patient
    from ichseg.data.phantom.randomise import vary_patient

    pats = [vary_patient(np.random.default_rng(s), _draw_patient(np.random.default_rng(s)), r) for s in range(200)]
    grey, white = np.array([p.grey for p in pats]), np.array([p.white for p in pats])
    assert (grey - white >= 4).all() and 32 <= grey.min() and grey.max() <= 46 and 20 <= white.min()
    assert grey.max() - grey.min() > 10  # wider than the generator's own 36-42


def test_resolution_options_set_pixel_size_and_slice_thickness():
    v = phantom_case("instance2022", 0, 0, 64, (6, 6), randomise={**QUIET, "pixel_scale": [1.1, 1.1], "thickness_mm": [3.0, 3.0]})
    assert v.spacing[2] == pytest.approx(3.0) and v.spacing[0] == pytest.approx(220.0 * 1.1 / 64)


def test_bias_field_is_smooth_and_within_bounds():
    f = bias_field(np.random.default_rng(0), (96, 96, 20), (2.0, 2.0, 5.0))
    assert np.abs(f).max() == pytest.approx(1.0)
    for axis in (0, 1):  # curvature of a cosine of >= 120 mm wavelength at 2 mm steps: (2 pi 2 / 120)^2 = 0.011 each
        assert np.abs(np.diff(f, 2, axis=axis)).max() < 0.03
    off, on = (phantom_case("instance2022", 1, 0, 96, (8, 8), randomise={**QUIET, "bias_hu": b}) for b in (0.0, 8.0))
    d = on.hu - off.hu
    assert np.abs(d).max() <= 8.0 + 1e-3 and np.abs(d).max() > 0.5


def test_noise_is_band_pass_not_white():
    n = band_noise(np.random.default_rng(0), (128, 128, 8), 0.5, 0.6)
    assert n.std() == pytest.approx(1.0, abs=1e-3)
    power = (np.abs(np.fft.fft2(n, axes=(0, 1))) ** 2).mean(axis=2)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(128, 0.5), np.fft.fftfreq(128, 0.5), indexing="ij"))
    low, mid, high = (power[(f > a) & (f <= b)].mean() for a, b in ((0, 0.06), (0.2, 0.4), (0.9, 1.0)))
    assert mid > 2 * low and mid > 2 * high  # a peak, as the ramp filter and the kernel make


def test_beam_hardening_darkens_the_band_between_two_dense_bones():
    m, h = 128, 1.6
    x, y = np.meshgrid(*(2 * [(np.arange(m) - (m - 1) / 2) * h]), indexing="ij")
    img = np.where(np.hypot(x, y) < 85, 30.0, -1000.0)
    img = np.where((np.hypot(x, y) >= 78) & (np.hypot(x, y) < 85), 1500.0, img)  # skull ring
    for cx in (-40, 40):  # the petrous bones
        img = np.where(np.hypot(x - cx, y) < 9, 2200.0, img)
    img = img[:, :, None].astype(np.float32)
    err = streaks(img, img > -300, h, 20.0)[:, :, 0]
    between = (np.abs(x) < 20) & (np.abs(y) < 4)
    beside = (np.abs(x) < 20) & (np.abs(y) > 20) & (np.abs(y) < 40)
    assert err[between].mean() < err[beside].mean() - 5
    assert err[img[:, :, 0] > 150].max() == 0  # bone itself untouched


def test_fluid_level_puts_the_denser_part_on_the_dependent_side():
    off, on = _pair("intraparenchymal", {"fluid_level": 1.0})
    lab = on.labels > 0
    ys = np.nonzero(lab)[1]
    post, ant = lab & (np.arange(lab.shape[1])[None, :, None] < np.median(ys)), lab & (np.arange(lab.shape[1])[None, :, None] > np.median(ys))
    assert on.hu[post].mean() > on.hu[ant].mean() + 15  # RAS+: posterior is lower y
    assert abs(off.hu[post].mean() - off.hu[ant].mean()) < 10


def test_gravity_normal_is_posterior_for_an_upright_head():
    assert np.allclose(gravity_normal(np.eye(3)), [0, -1, 0])
    r = np.array([[1, 0, 0], [0, math.cos(0.3), -math.sin(0.3)], [0, math.sin(0.3), math.cos(0.3)]])
    assert np.allclose(r.T @ gravity_normal(r) / np.linalg.norm(r.T @ gravity_normal(r)), [0, -1, 0])


def test_oedema_rim_is_hypodense_against_brain():
    off, on = _pair("intraparenchymal", {"oedema": 1.0})
    lab = on.labels > 0
    ring = ndimage.binary_dilation(lab, np.ones((3, 3, 1), bool), iterations=2) & ~lab & on.tissue["parenchyma"]
    assert on.hu[ring].mean() < off.hu[ring].mean() - 3
    far = on.tissue["parenchyma"] & ~ndimage.binary_dilation(lab, np.ones((3, 3, 1), bool), iterations=8)
    assert on.hu[ring].mean() < np.median(on.hu[far])


def test_swirl_mixes_lower_density_into_the_clot():
    off, on = _pair("intraparenchymal", {"swirl": 1.0})
    core = ndimage.binary_erosion(on.labels > 0, np.ones((3, 3, 1), bool))
    assert on.hu[core].std() > off.hu[core].std() + 3 and on.hu[core].mean() < off.hu[core].mean()
    assert np.array_equal(on.labels, off.labels)  # the label is the blood, whatever its density


def test_noise_power_of_white_noise_is_flat_at_its_variance_times_pixel_area():
    from ichseg.data.realism import noise_power

    rng = np.random.default_rng(0)
    got = noise_power(rng.normal(30, 5, (256, 256)), np.ones((256, 256), bool), 0.5)
    assert got["rois"] == 15 * 15
    for f in ("0.1", "0.2", "0.4", "0.8"):
        assert got["nps_hu2mm2"][f] == pytest.approx(25 * 0.25, rel=0.15)
    smooth = noise_power(ndimage.gaussian_filter(rng.normal(0, 5, (256, 256)), 2), np.ones((256, 256), bool), 0.5)
    assert smooth["nps_hu2mm2"]["0.8"] < 0.01 * smooth["nps_hu2mm2"]["0.1"]  # correlated noise: power at low frequency
    assert noise_power(np.zeros((16, 16)), np.ones((16, 16), bool), 0.5) == {}


def test_cli_and_profile_folder_name_carry_the_option(tmp_path, capsys):
    from ichseg.cli import main
    from ichseg.data.volumes import load_volume
    from ichseg.engine.data import raw_folder

    for flag, name in (([], "plain"), (["--randomise"], "rand")):
        rc = main(["phantom", str(tmp_path / name), "--layout", "physionet", "--cases", "1", "--seed", "3",
                   "--in-plane", "32", "--slices", "4", *flag])
        assert rc == 0 and "wrote 1 physionet" in capsys.readouterr().out
    plain, rand = (load_volume(next((tmp_path / n / "ct_scans").iterdir())).data for n in ("plain", "rand"))
    assert plain.shape[:2] == rand.shape[:2] and not np.array_equal(plain, rand)
    cfg = lambda ph: {"data": {"phantom": {"cases": 1, "in_plane": 16, "slices": 2, **ph}}}
    names = {raw_folder(cfg(ph), "physionet", tmp_path).name for ph in ({}, {"randomise": {}})}
    assert len(names) == 2  # a randomised cohort never reuses the plain one's folder


def test_committed_realism_record_has_what_the_realism_page_reads():
    import json
    from pathlib import Path

    rec = json.loads((Path(__file__).resolve().parents[1] / "bench" / "measured" / "phantom_realism.json").read_text())
    assert set(rec["real"]) == {"J2K_pixelrep_mismatch.dcm", "693_UNCR.dcm"}
    for cond in ("synthetic_off", "synthetic_randomised"):
        s = rec[cond]["summary"]
        assert len(rec[cond]["per_seed"]) == rec["machine"]["seeds"]
        assert {"parenchyma_mean", "parenchyma_hf_sd", "csf_mean", "bone_mean", "parenchyma_nps_0.4"} <= set(s)
    spread = lambda c: rec[c]["summary"]["parenchyma_hf_sd"]["between_seed_sd"]
    assert spread("synthetic_randomised") > spread("synthetic_off")  # randomisation widens the noise between patients


def test_randomise_defaults_still_draw_what_they_drew_before_the_bone_band():
    # sha256 of (hu, labels, affine) of ``randomise: {}`` before ``bone_band_hu`` existed (off by default)
    v = phantom_case("instance2022", 3, 0, 96, (8, 10), randomise={})
    assert hashlib.sha256(v.hu.tobytes() + v.labels.tobytes() + v.affine.tobytes()).hexdigest()[:12] == "6ee3d78decef"


def test_bone_band_brightens_brain_beside_skull_base_bone_and_fades_inwards():
    band = {**QUIET, "noise_hu": [0.0, 0.0], "bone_band_hu": [20.0, 20.0], "bone_band_mm": [3.0, 3.0]}
    off = phantom_case("instance2022", 5, 0, 192, (24, 24), with_tissue=True, randomise={**QUIET, "noise_hu": [0.0, 0.0]})
    on = phantom_case("instance2022", 5, 0, 192, (24, 24), with_tissue=True, randomise=band)
    assert np.array_equal(on.labels, off.labels)
    diff, inside, bone = on.hu - off.hu, off.tissue["brain"] & ~off.tissue["bone"], off.tissue["bone"]
    assert np.abs(diff[~off.tissue["head"]]).max() < 0.5  # nothing outside the head
    mm = off.spacing[0]
    dist = np.stack([ndimage.distance_transform_edt(~bone[:, :, k]) * mm for k in range(bone.shape[2])], axis=2)
    brain_area = inside.sum(axis=(0, 1))
    base = int(np.argmax(brain_area > 0.3 * brain_area.max()))  # the lowest slice with a sizeable brain
    top = int(np.argmax(brain_area))  # the largest brain section lies above the skull base

    def rise(k, lo, hi):
        sel = inside[:, :, k] & (dist[:, :, k] > lo) & (dist[:, :, k] <= hi)
        return float(diff[:, :, k][sel].mean())

    near, deep = rise(base, 1.0, 3.0), rise(base, 10.0, 40.0)
    assert near > 5.0 and deep < 0.3 * near, (near, deep)  # brighter beside bone, fading inwards
    assert rise(top, 1.0, 3.0) < 0.6 * near  # the calvarium's share is smaller
    assert np.all(diff > -0.5)  # it only brightens


def test_bone_band_settings_validate():
    assert Randomise.from_config({}).bone_band_hu is None
    with pytest.raises(ConfigError, match=r"^data\.phantom\.randomise\.bone_band_mm: need low <= high"):
        Randomise.from_config({"bone_band_hu": [0, 20], "bone_band_mm": [5, 1]})
    with pytest.raises(ConfigError, match=r"^data\.phantom\.randomise\.bone_band_calvarium: must lie in \[0, 1\]"):
        Randomise.from_config({"bone_band_calvarium": 2})
