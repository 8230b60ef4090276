"""Privacy: retention (schedule, purge, lapsed consent), erasure with receipts, subject access, redaction."""
