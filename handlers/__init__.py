"""One module per kind of message. The first whose match() is true handles it;
the enquiry fallback comes last."""
from handlers import claims, enquiry, referrals, template_request

HANDLERS = [template_request, referrals, claims, enquiry]
