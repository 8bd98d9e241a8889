"""Datasets: registry, file readers, format converters, templates, stage processors."""
