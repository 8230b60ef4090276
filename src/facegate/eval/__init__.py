"""Evaluation: calibration of thresholds from impostor scores, verification metrics."""
