"""Export the trained OCR to a full-integer int8 TFLite file (uint8 in, uint8 out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def export_int8(model, representative: np.ndarray, path: Path) -> Path:
    """Quantize with real-looking crops as the calibration set; write `path`."""
    import tensorflow as tf

    h, w = model.input_shape[1:3]

    import tempfile

    import keras

    # Through a SavedModel: a concrete function straight from the live model
    # keeps variables as resources, which the int8 calibrator cannot read.
    tmpdir = tempfile.mkdtemp(prefix="ocr_export_")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec([1, h, w, 1], tf.float32, name="image")])
    archive.write_out(tmpdir)

    def rep():
        for img in representative:
            yield [img[None, :, :, None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_saved_model(tmpdir, signature_keys=["serve"])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.uint8
    data = conv.convert()
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
