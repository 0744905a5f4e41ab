"""Pure decisions: the cluster view, the fit function, scheduling, verification and
policies. No I/O, no clock, no randomness of its own (``rng`` is an argument)."""

from pallet.core.fit import feasible, rejection_reasons, why_not
from pallet.core.frag import Workload
from pallet.core.policies import POLICY_NAMES, Policy, make_policy
from pallet.core.schedule import schedule
from pallet.core.verify import check_placement, verify
from pallet.core.view import ClusterView

__all__ = [
    "POLICY_NAMES",
    "ClusterView",
    "Policy",
    "Workload",
    "check_placement",
    "feasible",
    "make_policy",
    "rejection_reasons",
    "schedule",
    "verify",
    "why_not",
]
