"""``python -m opslib.sandbox.kube --port 0 --state DIR``."""

from opslib.sandbox.kube import main

main()
