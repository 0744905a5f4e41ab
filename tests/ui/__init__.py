"""Tests of the web dashboard: its assets, and the pages in a real browser."""
