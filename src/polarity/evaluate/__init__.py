"""Evaluation: metrics, calibration, speed profile and reports."""
