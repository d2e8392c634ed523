"""Export an SSD to full-int8 TFLite with the fused TFLite_Detection_PostProcess op.

The route that works with TF 2.21 / Keras 3: a `tf.function` carrying
`experimental_implements` for the post-process (its body is a stub the
converter replaces with the op), saved through keras.export.ExportArchive,
then TFLiteConverter.from_saved_model. Outputs are named in the signature
(detection_boxes, detection_classes, detection_scores, num_detections)
because TFLite does not keep a canonical output order.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


def _postprocess_fn(max_detections: int, score_threshold: float, iou_threshold: float):
    import tensorflow as tf

    from training.anchors import H_SCALE, W_SCALE, X_SCALE, Y_SCALE

    sig = " ".join([
        'name: "TFLite_Detection_PostProcess"',
        f'attr {{ key: "max_detections" value {{ i: {max_detections} }} }}',
        'attr { key: "max_classes_per_detection" value { i: 1 } }',
        'attr { key: "detections_per_class" value { i: 100 } }',
        'attr { key: "use_regular_nms" value { b: false } }',
        f'attr {{ key: "nms_score_threshold" value {{ f: {score_threshold:f} }} }}',
        f'attr {{ key: "nms_iou_threshold" value {{ f: {iou_threshold:f} }} }}',
        f'attr {{ key: "y_scale" value {{ f: {Y_SCALE:f} }} }}',
        f'attr {{ key: "x_scale" value {{ f: {X_SCALE:f} }} }}',
        f'attr {{ key: "h_scale" value {{ f: {H_SCALE:f} }} }}',
        f'attr {{ key: "w_scale" value {{ f: {W_SCALE:f} }} }}',
        'attr { key: "num_classes" value { i: 1 } }',
    ])

    @tf.function(experimental_implements=sig)
    def postprocess(box_encodings, class_predictions, anchors):
        # Stub: the converter replaces this function with the TFLite op.
        boxes = tf.zeros([1, max_detections, 4], tf.float32) + tf.reduce_sum(box_encodings) * 0
        classes = tf.zeros([1, max_detections], tf.float32) + tf.reduce_sum(class_predictions) * 0
        scores = tf.zeros([1, max_detections], tf.float32) + tf.reduce_sum(anchors) * 0
        count = tf.zeros([1], tf.float32)
        return boxes, classes, scores, count

    return postprocess


def export_detector(model, anchors: np.ndarray, representative, path: Path, max_detections: int = 10,
                    score_threshold: float = 0.1, iou_threshold: float = 0.45,
                    sigmoid_logits: bool = True, quantize: bool = True) -> Path:
    """model(x) -> (box_encodings [1,N,4], class logits [1,N,1]) ; writes `path`.

    representative: iterable of uint8 HxWx3 images for int8 calibration.
    """
    import keras
    import tensorflow as tf

    size = model.input_shape[1]
    post = _postprocess_fn(max_detections, score_threshold, iou_threshold)
    anchors_c = tf.constant(anchors, tf.float32)

    def serve(x):
        box, logit = model(x, training=False)
        score = tf.sigmoid(logit) if sigmoid_logits else logit
        cls = tf.concat([tf.zeros_like(score), score], axis=-1)  # background column first
        boxes, classes, scores, count = post(box, cls, anchors_c)
        return {"detection_boxes": boxes, "detection_classes": classes,
                "detection_scores": scores, "num_detections": count}

    tmpdir = tempfile.mkdtemp(prefix="det_export_")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="image")])
    archive.write_out(tmpdir)

    def rep():
        for img in representative:
            yield [np.asarray(img, np.float32)[None]]

    conv = tf.lite.TFLiteConverter.from_saved_model(tmpdir, signature_keys=["serving_default"])
    conv.allow_custom_ops = True
    if quantize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        conv.inference_input_type = tf.uint8
    data = conv.convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
