"""Privacy: the audit trail (and, later, consent lifecycle, retention, erasure, redaction)."""
