"""``python3 -m pallet``: the ``pallet`` command, for an environment whose scripts are not on
``PATH`` (or a source tree on ``PYTHONPATH``)."""

from pallet.cli.main import main

main()
