"""Pallet's load balancers: the edge LB (Marathon-LB's labels, on public agents) and each
agent's VIP proxy, both Debian's HAProxy in master-worker mode, reloaded seamlessly as
the task table changes."""
