"""The reading layer: mail-agnostic text understanding shared by the handlers (no SQL, no mail)."""
