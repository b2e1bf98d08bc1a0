"""One module per kind of message. The first whose match() is true handles it;
the enquiry fallback comes last. Each service (inbox) has its own list."""
from handlers import (claims, enquiry, imsk, referrals, register_updates, returns, template_request, training,
                      transfers)

HANDLERS = [template_request, transfers, returns, referrals, register_updates, claims, enquiry]
BY_SERVICE = {"les": HANDLERS, "imsk": [imsk, enquiry], "training": [training, enquiry]}


def for_service(service: str) -> list:
    return BY_SERVICE.get(service, HANDLERS)
