"""lesbot: the email bot for an NHS Local Enhanced Service contract team."""
__version__ = "0.1.0"
