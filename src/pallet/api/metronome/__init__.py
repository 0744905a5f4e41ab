"""Metronome's job API at the HTTP edge: reading job and schedule JSON into
``pallet.model.jobs`` (pydantic lives here only) and rendering jobs, runs and history in
Metronome's shapes."""
