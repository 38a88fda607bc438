"""Data preparation: sources, cleaning, quality control and splits."""
