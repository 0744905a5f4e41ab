"""A typed HTTP client of Pallet's API, used by the CLI and the tests."""
