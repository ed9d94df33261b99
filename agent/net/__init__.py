"""The agent's network plumbing: the DNS classifier attached to the egress
of every interface of the watched network namespaces through netlink
(pyroute2), kept attached to interfaces that appear later, and removed on
stop (or, after a crash, on the next start). See docs/network.md."""
