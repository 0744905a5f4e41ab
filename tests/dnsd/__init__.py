"""Tests of ``pallet.dns`` (the folder is not called ``dns``: on the tests' import path
that name would shadow dnspython's ``dns`` package, which these tests query with)."""
