"""The master: composition root that builds store, control loops and API, and serves them
(``pallet.master.server``); and ``pallet up``, a whole cluster on this machine
(``pallet.master.up``). Nothing is imported here, so ``pallet up`` starts fast."""
