"""Data: sources (builtin, inline, csv, npz), splits, normalisation."""
