"""One module per kind of message. The first whose match() is true handles it;
the enquiry fallback comes last."""
from handlers import (claims, enquiry, referrals, register_updates, returns, template_request,
                      transfers)

HANDLERS = [template_request, transfers, returns, referrals, register_updates, claims, enquiry]
