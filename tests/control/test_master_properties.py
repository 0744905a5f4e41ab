"""The whole master under random use: ``pallet.bench.invariants``' state machine, about
2,400 steps (60 runs of 40), every invariant checked after every step (see there)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from pallet.bench.invariants import Master

Master.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMaster = Master.TestCase
