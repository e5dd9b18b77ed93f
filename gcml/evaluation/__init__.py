"""Metrics, baselines, plots and reports."""
