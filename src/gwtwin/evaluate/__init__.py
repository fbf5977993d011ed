"""Metrics against ground truth and the detection-impact harness."""
