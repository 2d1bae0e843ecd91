"""The lowest layer: errors, findings, plans and outcomes, the executor registry, runtime facts,
progress, bounded waits, the in-kernel recorder and redaction. Imports nothing else of opslib."""
