"""Model making for anpr-edge: synthetic data, training and int8 export (TensorFlow lives here only)."""
