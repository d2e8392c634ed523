"""The detector's stage profiler (training.profile_detector): its arithmetic and timing harness.

Building and converting the nine cuts takes ~90 s even at 64 px, so the
whole command is run by hand (README, model card), not here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training.det_model import STEMS, build_detector
from training.profile_detector import WHOLE, cumulative_macs, main, stage_rows, stages, time_models

OCR_MODEL = Path(__file__).resolve().parents[1] / "tflite_graphs" / "ocr" / "ocr.tflite"


def test_each_stage_is_charged_the_time_its_cut_adds_to_the_one_before() -> None:
    rows = stage_rows(["a", "b", "c"], {"a": 1.0, "b": 3.5, "c": 4.0},
                      {"a": 2_000_000, "b": 2_500_000, "c": 9_500_000})
    assert [r["stage_ms"] for r in rows] == [1.0, 2.5, 0.5]
    assert [r["cumulative_ms"] for r in rows] == [1.0, 3.5, 4.0]
    assert [r["stage_mmacs"] for r in rows] == [2.0, 0.5, 7.0]
    assert sum(r["stage_ms"] for r in rows) == pytest.approx(rows[-1]["cumulative_ms"])


@pytest.mark.parametrize("stem", STEMS)
def test_every_stem_is_cut_at_layers_of_its_model_from_the_input_on(stem) -> None:
    model = build_detector(alpha=0.35, size=128, stem=stem)
    names = [layer.name for layer in model.layers]
    cuts = [names.index(layer) for _, layer in stages(stem)]
    assert cuts == sorted(cuts) and len(set(cuts)) == len(cuts)
    assert stages(stem)[-1][1] == "out_relu" and WHOLE not in dict(stages(stem))


def test_multiply_adds_grow_stage_by_stage_to_the_whole_detector() -> None:
    macs = cumulative_macs(build_detector(alpha=0.35, size=320))
    order = [label for label, _ in stages()] + [WHOLE]
    assert all(macs[a] < macs[b] for a, b in zip(order, order[1:]))
    # the stem: a 3x3 conv from 3 to 16 channels on a 160x160 output
    assert macs[order[0]] == 160 * 160 * 16 * 3 * 3 * 3
    assert 150e6 < macs[WHOLE] < 190e6


def test_the_s4_stem_skips_the_160_px_layers_and_keeps_the_rest() -> None:
    full = cumulative_macs(build_detector(alpha=0.35, size=320), "mobilenet")
    s4 = cumulative_macs(build_detector(alpha=0.35, size=320, stem="s4"), "s4")
    assert s4[stages("s4")[0][0]] == 80 * 80 * 8 * 4 * 4 * 3  # a 4x4/4 conv from 3 to 8 channels
    # from stride 8 on the two nets are the same layers
    tail = [label for label, _ in stages()[-4:]] + [WHOLE]
    full_tail = [full[b] - full[a] for a, b in zip(tail, tail[1:])]
    s4_tail = [s4[b] - s4[a] for a, b in zip(tail, tail[1:])]
    assert full_tail == s4_tail
    assert s4[WHOLE] < full[WHOLE]


def test_models_are_timed_per_invoke_on_one_thread() -> None:
    ms = time_models({"ocr": OCR_MODEL}, rounds=2, invokes=3)
    assert set(ms) == {"ocr"} and 0 < ms["ocr"] < 1000


def test_a_missing_model_is_named_before_any_work(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(tmp_path / "nope.tflite")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--model" in err and "nope.tflite: no such file" in err


def test_the_trainer_and_the_profiler_offer_every_stem_of_the_model() -> None:
    from training.profile_detector import _HEADS
    from training.train_detector import parse_args

    assert set(_HEADS) == set(STEMS)
    for stem in STEMS:
        assert parse_args(["--stem", stem]).stem == stem
    with pytest.raises(SystemExit):
        parse_args(["--stem", "vgg"])
