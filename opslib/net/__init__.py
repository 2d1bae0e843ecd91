"""Network adapters: what a client on the wire sees (TLS handshakes, served certificates).

Independent of the AWS, Kubernetes and PostgreSQL adapters: certificates read from those
sources are parsed here too (:mod:`opslib.net.certs`), through the runbook that composes them.
"""
