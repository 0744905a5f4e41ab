"""Pallet's DNS: Mesos-DNS names for every app and task, kept in step with the task table
by the API's event stream, served by Debian's ``unbound`` (fed at run time) or by a
Python server; names outside Pallet's zones go to the machine's resolvers."""
