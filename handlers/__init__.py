"""One module per kind of message. The first whose match() is true handles it;
the enquiry fallback comes last. Each service (inbox) has its own list."""
from handlers.claims import handler as claims
from handlers.enquiry import handler as enquiry
from handlers.imsk import handler as imsk
from handlers.referrals import handler as referrals
from handlers.transfers import register_updates
from handlers.returns import handler as returns
from handlers.claims import template_request
from handlers.training import handler as training
from handlers.transfers import handler as transfers

HANDLERS = [template_request, transfers, returns, referrals, register_updates, claims, enquiry]
BY_SERVICE = {"les": HANDLERS, "imsk": [imsk, enquiry], "training": [training, enquiry]}


def for_service(service: str) -> list:
    return BY_SERVICE.get(service, HANDLERS)
