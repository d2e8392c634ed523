"""Model making for anpr-edge: synthetic data, training and int8 export (TensorFlow lives here only)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"  # ../shared: training and evaluation data beside the checkout
# the OCR net's first layers (training.ocr_model); here so option parsers need not load keras
OCR_STEMS = ("pool", "stride2")
# How the OCR net's 3-wide convolutions after the first are made (training.ocr_model):
# "full" (the shipped model) or "separable" (depthwise 3x3 then pointwise 1x1, MobileNet's
# factorisation: 18 against 93 million multiply-adds a read at width 1.5, 31 at width 2).
OCR_CONVS = ("full", "separable")
# The OCR net's channel width multiplier that made the shipped model (retrain 26;
# retrains 1-25 used 1.0): the default of train_ocr and bench_train_step alike.
OCR_WIDTH = 1.5
# The OCR input heights the net is built for (training.ocr_model): the shipped
# model's 32 and taller inputs, whose characters keep more pixels on loose crops.
OCR_HEIGHTS = (32, 48, 64)
OCR_HEIGHT = 32
# How the OCR net computes while training (training.ocr_model): float32, or
# bfloat16 with float32 weights (Keras "mixed_bfloat16"), which oneDNN runs on
# AMX / AVX-512 BF16 where the CPU has them. Export is float32 -> int8 either way.
OCR_PRECISIONS = ("float32", "bf16")
