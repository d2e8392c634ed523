"""check-config: one OK line, or one error line with exit 2 (config) or 3 (model)."""

from __future__ import annotations

from pathlib import Path

import pytest

import edge.pipeline
from edge.cli import main
from edge.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
MODELS = (REPO / "tflite_graphs/plates/detect.tflite", REPO / "tflite_graphs/ocr/ocr.tflite",
          REPO / "tflite_graphs/ocr/alphabet.txt")


class _Nothing:
    def detect(self, image):  # noqa: ANN001, ANN201
        return []

    def read(self, gray):  # noqa: ANN001, ANN201
        raise AssertionError("not called")


def write_config(tmp_path: Path, body: str = "", *, models: bool = True) -> Path:
    if models:
        for name in ("det.tflite", "ocr.tflite", "alphabet.txt"):
            (tmp_path / name).write_bytes(b"not a model")
    config = tmp_path / "config.yaml"
    config.write_text("detector: {model: det.tflite}\n"
                      "reader: {ocr_model: ocr.tflite, alphabet: alphabet.txt, tesseract: {enabled: false}}\n"
                      + body, encoding="utf-8")
    return config


def run(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["check-config", "--config", str(config)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("anpr-edge: error: ")
    return lines[0]


def test_good_config_prints_one_ok_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    built = []

    def fake_build(cfg):  # noqa: ANN001, ANN202
        built.append(cfg)
        return Pipeline(_Nothing(), _Nothing(), cfg.filters)

    monkeypatch.setattr(edge.pipeline, "build_pipeline", fake_build)
    code, out, err = run(write_config(tmp_path, "camera: {id: gate1}\n"), capsys)
    assert code == 0 and err == ""
    assert out.count("\n") == 1 and out.startswith("OK ") and "camera gate1" in out
    assert len(built) == 1


@pytest.mark.parametrize("body, words", [
    ("detector: [oops\n", "YAML"),
    ("tracker: {max_gap: 1}\n", "tracker.max_gap"),
    ("filters: {min_length: 0}\n", "filters.min_length"),
    ("filters: {formats: [XX]}\n", "filters.formats[0]"),
])
def test_bad_config_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, words: str) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + body, encoding="utf-8")
    code, out, err = run(config, capsys)
    assert code == 2 and out == ""
    assert words in one_error_line(err)


def test_missing_config_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(tmp_path / "absent.yaml", capsys)
    assert code == 2 and "absent.yaml" in one_error_line(err)


def test_missing_token_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "backend: {url: 'http://127.0.0.1:9', token_file: nope.txt}\n")
    code, _, err = run(config, capsys)
    assert code == 2 and "backend.token_file" in one_error_line(err)


def test_missing_model_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    (tmp_path / "det.tflite").unlink()
    code, _, err = run(config, capsys)
    assert code == 3 and "detector.model" in one_error_line(err)


def test_broken_model_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(write_config(tmp_path), capsys)
    assert code == 3
    line = one_error_line(err)
    assert "det.tflite" in line and "TFLite" in line


def test_repo_config_with_real_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(REPO / "samples" / "demo-config.yaml", capsys)
    assert code == 0, err
    assert out.startswith("OK ") and out.count("\n") == 1


def test_the_ok_line_names_the_ocr_models_alphabet_and_input_equalisation(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The model's reader sits under the second look and the Tesseract fallback;
    the line still describes it, and says when its input is equalised (ocr.input.json)."""
    from edge.reader import write_input_record

    detector, ocr, alphabet = MODELS
    config = tmp_path / "config.yaml"
    config.write_text(f"detector: {{model: {detector}}}\nreader: {{ocr_model: {ocr}, alphabet: {alphabet}}}\n",
                      encoding="utf-8")
    code, out, err = run(config, capsys)
    assert code == 0, err
    assert f"OCR ocr.tflite ({len(alphabet.read_text().strip())} characters) + tesseract" in out
    assert "equalised" not in out
    for name in ("ocr.tflite", "alphabet.txt"):
        (tmp_path / name).write_bytes((ocr.parent / name).read_bytes())
    write_input_record(tmp_path / "ocr.tflite", "clahe")
    config.write_text(f"detector: {{model: {detector}}}\nreader: {{ocr_model: ocr.tflite, alphabet: alphabet.txt}}\n",
                      encoding="utf-8")
    code, out, err = run(config, capsys)
    assert code == 0, err
    assert "OCR ocr.tflite (36 characters) (input equalised: clahe) + tesseract" in out


def test_a_bad_input_record_beside_the_ocr_model_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    detector, ocr, alphabet = MODELS
    for name in ("ocr.tflite", "alphabet.txt"):
        (tmp_path / name).write_bytes((ocr.parent / name).read_bytes())
    (tmp_path / "ocr.input.json").write_text('{"equalize": "hist"}')
    config = tmp_path / "config.yaml"
    config.write_text(f"detector: {{model: {detector}}}\nreader: {{ocr_model: ocr.tflite, alphabet: alphabet.txt}}\n",
                      encoding="utf-8")
    code, _, err = run(config, capsys)
    assert code == 3
    assert "ocr.input.json: equalize must be one of none, clahe, got 'hist'" in one_error_line(err)
