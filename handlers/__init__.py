"""One module per kind of message. The first whose match() is true handles it;
the enquiry fallback comes last. Each service (inbox) has its own list."""
from handlers import (claims, enquiry, referrals, register_updates, returns, template_request,
                      transfers)

HANDLERS = [template_request, transfers, returns, referrals, register_updates, claims, enquiry]


def for_service(service: str) -> list:
    from handlers import imsk, training
    return {"imsk": [imsk, enquiry], "training": [training, enquiry]}.get(service, HANDLERS)
