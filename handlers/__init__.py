"""One module per kind of message. The first whose match() is true handles it.

Later issues add claims and referrals ahead of the enquiry fallback.
"""
from handlers import enquiry

HANDLERS = [enquiry]
