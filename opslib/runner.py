"""Runs a notebook with papermill, validates parameters, writes the evidence bundle (in progress)."""
