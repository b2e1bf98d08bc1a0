"""The checks a new (or completed) referral must pass, each problem with its fix. Infers before
asking: the registered practice is the sender's when it writes about its own patient; the receiving
practice is the one named or ticked, else the one directory practice copied in. Conflicting evidence
is kept in Assessed.conflict for a person to settle."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cache

from handlers import casework
from handlers.base import error
from handlers.contract import letters
from handlers.contract.reading import practices
from handlers.referrals.lexicon import lexicon
from handlers.referrals.reader import Referral
from store import referrals as store
from store.directory import org_for

SERVICE = "msk-injection"
WHY_NOT_REGISTERED = re.compile(
    r"\b(on behalf of|temporary resident|not (?:yet )?registered with us|registered elsewhere|"
    r"visiting the area|reason not registered)\b", re.I)


@dataclass
class Assessed:
    referral: Referral
    referrer: str | None = None
    receiving: str | None = None
    registered: str | None = None
    problems: list[dict] = field(default_factory=list)
    not_eligible: str = ""
    duplicate_of: int | None = None
    replaces: int | None = None       # an incomplete referral for the same patient, now sent again
    referrer_email: str = ""
    id: int | None = None
    conflict: str = ""                 # evidence that disagrees: held for a person
    assumed: list[str] = field(default_factory=list)   # what lesbot inferred, echoed to the sender

    @property
    def state(self) -> str:
        if self.duplicate_of:
            return "duplicate"
        if self.not_eligible:
            return "not_eligible"
        return "incomplete" if self.problems else "forwarded"


def assess(conn, r: Referral, on: date, sender, text: str, copied=(), known: dict | None = None,
           parsed=None) -> Assessed:
    """Every check the specification asks for. known: practices already settled (a stored referral)."""
    known = known or {}
    a = Assessed(r)
    a.problems = [error(f, p) for f, p in r.problems(on) + r.contact_problems()]
    directory = casework.directory(conn)
    quoted = letters.forwarded(text)
    q_from = org_for(conn, quoted.from_addr) if quoted.from_addr else None
    q_to = org_for(conn, quoted.to_addr) if quoted.to_addr else None
    a.referrer = known.get("referrer") or _resolve(conn, directory, r.get("referring_practice"))[0] or \
        (q_from.ods_code if q_from and q_from.kind == "practice" else sender.ods_code)
    @cache
    def mentions() -> list:
        """Practices the text names: read only when a field does not settle it (it is slow)."""
        return practices.find_in_text(text, directory) if text else []

    if known.get("receiving"):
        a.receiving = known["receiving"]
    elif r.get("receiving_practice"):
        a.receiving, cands = _resolve(conn, directory, r.get("receiving_practice"))
        if a.receiving is None and len(cands) > 1:
            a.conflict = ("the receiving practice '" + r.get("receiving_practice") + "' could be " +
                          " or ".join(casework.name_of(conn, c) for c in cands))
    else:
        _infer_receiving(conn, a, mentions(), copied, q_to, sender)

    if known.get("registered"):
        a.registered = known["registered"]
    else:
        _find_registered(conn, a, directory, mentions, text)
    _check_practices(conn, a, directory, known, text)
    return a


def _resolve(conn, directory, written: str, kinds=("practice",)) -> tuple[str | None, list[str]]:
    """A practice as written in a field -> (the one directory code, or None; the candidates)."""
    if not written:
        return None, []
    code = casework.practice_from(conn, written, directory=directory)
    if code:
        return code, [code]
    hits = practices.match_name(written, directory, kinds)
    if not hits:
        return None, []
    best = [c for c, score in hits if score >= hits[0][1] - 3]
    return (best[0] if len(best) == 1 else None), [c for c, _ in hits]


def _own_patient(text: str) -> bool:
    return bool(lexicon()["own"].search(text or ""))


def _infer_receiving(conn, a: Assessed, mentions, copied, q_to, sender) -> None:
    """No receiving practice written: a ticked box, else the one practice named or copied in."""
    ticked = list(dict.fromkeys(m.ods_code for m in mentions if m.how == "ticked"))
    named = list(dict.fromkeys(m.ods_code for m in mentions if m.role == "receiving" and m.how != "ticked"
                               and m.ods_code != a.referrer))
    headers = [o.ods_code for o in copied if o.kind == "practice" and o.ods_code != a.referrer]
    if len(ticked) == 1:
        a.receiving = ticked[0]
        a.assumed.append(f"receiving practice: the ticked box ({casework.name_of(conn, a.receiving)})")
        return
    if len(ticked) > 1:
        a.conflict = "more than one receiving practice is ticked: " + ", ".join(
            casework.name_of(conn, c) for c in ticked)
        return
    evidence = list(dict.fromkeys(named + headers))
    if q_to and q_to.kind == "practice" and q_to.ods_code != a.referrer and not evidence:
        evidence = [q_to.ods_code]
    if not evidence and sender.ods_code != a.referrer:
        evidence = [sender.ods_code]
    if len(evidence) == 1:
        a.receiving = evidence[0]
        how = "named in the letter" if evidence[0] in named else "the practice copied in"
        a.assumed.append(f"receiving practice: {casework.name_of(conn, a.receiving)} ({how})")
    elif len(evidence) > 1:
        in_both = [c for c in named if c in headers]
        if len(in_both) == 1:
            a.receiving = in_both[0]
        elif len(named) == 1 and not headers:
            a.receiving = named[0]
        else:
            a.conflict = "more than one practice could be the receiving practice: " + ", ".join(
                casework.name_of(conn, c) for c in evidence)


def _find_registered(conn, a: Assessed, directory, mentions: Callable[[], list], text: str) -> None:
    """The practice the patient is registered with: as written, else the referrer's own patient."""
    r = a.referral
    written = r.get("registered_practice")
    code, cands = _resolve(conn, directory, written)
    if code:
        a.registered = code
    elif written and re.search(r"\b(?:us|here|this practice|ourselves)\b", written, re.I):
        a.registered = a.referrer
    elif written and cands:
        a.conflict = a.conflict or ("the registered practice '" + written + "' could be " +
                                    " or ".join(casework.name_of(conn, c) for c in cands))
    elif written and practices.unknown_ods_codes(written, directory):
        a.registered = None
        a.problems.append(error("registered practice", (
            f"'{written}' is not a practice lesbot knows. Give the practice the patient is registered "
            "with by name and ODS code.")))
    else:
        roles = [m.ods_code for m in mentions() if m.role == "registered"]
        if _own_patient(text) or not roles:
            a.registered = a.referrer
            if not _own_patient(text):
                a.assumed.append(f"registered practice: {casework.name_of(conn, a.referrer)} (the referring "
                                 "practice, as no other was named)")
        elif len(set(roles)) == 1:
            a.registered = roles[0]
        else:
            a.registered = a.referrer


def _check_practices(conn, a: Assessed, directory, known: dict, text: str) -> None:
    """The receiving practice takes part; the patient is not its own; a referrer that is not the
    registered practice says why."""
    r = a.referral
    receiving = casework.org(conn, a.receiving)
    if receiving is None and not a.conflict:
        unknown = practices.unknown_ods_codes(r.get("receiving_practice"), directory)
        a.problems.append(error("receiving practice", (
            f"'{r.get('receiving_practice')}' is not a practice lesbot knows"
            + (f" (no practice has the ODS code {', '.join(unknown)}). " if unknown else ". ")
            if r.get("receiving_practice") else "is missing. ") +
            "Say which participating practice should see the patient, with its ODS code, "
            "e.g. 'Receiving practice: Meresfield Medical Centre (Z98101)'." + _offering_hint(conn)))
    elif receiving is not None and SERVICE not in receiving.services:
        a.problems.append(error("receiving practice", (
            f"{receiving.name} ({receiving.ods_code}) has not signed up to the MSK joint injection LES, "
            f"so it cannot be paid for this consultation." + _offering_hint(conn))))
    if a.receiving and a.registered == a.receiving:
        a.not_eligible = (f"the patient is registered with {casework.name_of(conn, a.receiving)}, the receiving "
                          "practice. This LES pays only for patients from another practice; see your own "
                          "patient under the Minor Surgery DES instead.")
    if a.registered and a.referrer and a.registered != a.referrer and not known.get("why") and \
            not r.get("why_not_registered") and not WHY_NOT_REGISTERED.search(text):
        a.problems.append(error("referring practice", (
            f"{casework.name_of(conn, a.referrer)} is not the practice the patient is registered with "
            f"({casework.name_of(conn, a.registered) or a.registered}). Say why you are referring, "
            "e.g. 'Reason not registered: referring on behalf of the registered practice'.")))


def _offering_hint(conn) -> str:
    offering = store.practice_names_offering(conn, SERVICE)
    return f" Practices that take part: {', '.join(offering)}." if offering else ""
