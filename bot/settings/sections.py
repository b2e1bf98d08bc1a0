"""The sections of lesbot's settings ([imap], [relay], [limits], [reminders] …): each a pydantic
model that forbids names it does not know, so a misspelt setting is an error at start.
Settings in config.py gathers them.
"""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ADDRESS_HINT = "an email address like les.inbox@nhs.net"


def _check_address(value: str) -> str:
    value = value.strip()
    local, _, domain = value.rpartition("@")
    if not local or not domain or " " in value:
        raise ValueError(f"{value!r} is not {ADDRESS_HINT}")
    return value.lower()


class ImapSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(993, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    user: str = ""
    password: str = ""
    # OAuth2 (XOAUTH2): a command that prints a fresh access token on stdout.
    oauth2_token_command: str = ""
    folder: str = "INBOX"
    processed_folder: str = "lesbot/processed"
    poll_seconds: float = Field(60.0, gt=0)
    idle: bool = True
    max_backoff_seconds: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _auth(self):
        if self.enabled and not self.user:
            raise ValueError("imap.user is required when imap.enabled is true")
        if self.enabled and not (self.password or self.oauth2_token_command):
            raise ValueError("imap needs password or oauth2_token_command")
        return self


class RelaySettings(BaseModel):
    """Outgoing SMTP relay. Empty host: replies go to the Maildir outbox instead."""
    model_config = ConfigDict(extra="forbid")
    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    user: str = ""
    password: str = ""
    oauth2_token_command: str = ""
    timeout_seconds: float = 30.0


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_message_bytes: int = Field(35 * 1024 * 1024, gt=0)
    max_attachments: int = Field(20, ge=0)
    max_attachment_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_unpacked_bytes: int = Field(50 * 1024 * 1024, gt=0)   # xlsx/docx/zip when unpacked
    handler_timeout_seconds: float = Field(30.0, gt=0)
    replies_per_sender_per_day: int = Field(50, ge=0)
    retry_base_seconds: float = Field(30.0, gt=0)
    retry_max_attempts: int = Field(8, ge=1)


class ReferralSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # An untoward event reported later than this after it happened is flagged.
    event_report_hours: int = Field(72, ge=1)


def _clock(v: str) -> str:
    try:
        parts = [int(x) for x in v.split(":")]
        if len(parts) not in (2, 3) or not (0 <= parts[0] < 24 and all(0 <= x < 60 for x in parts[1:])):
            raise ValueError
    except ValueError:
        raise ValueError(f"{v!r} is not a time of day: write HH:MM (Europe/London)") from None
    return v


class CalendarSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Days the office is closed besides weekends and England's bank holidays, e.g. ["2026-12-24"].
    closures: list[date] = []


class ReminderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time: str = "09:00"                      # London time, on the days below
    claims_due: bool = True
    claims_due_days: list[int] = [3, 8]      # days of the month before the 10th
    money_at_risk: bool = True
    money_at_risk_days: int = Field(14, ge=1)   # payment limit ends within this many days
    outcome_chase: bool = True
    outcome_chase_days: list[int] = [28, 42]    # after a referral was passed on; then the contract team
    recall: bool = True
    recall_days_before: int = Field(14, ge=0)
    recall_days_overdue: int = Field(28, ge=1)

    @field_validator("time")
    @classmethod
    def _time(cls, v):
        return _clock(v)

    @field_validator("claims_due_days")
    @classmethod
    def _days(cls, v):
        if any(not 1 <= d <= 9 for d in v):
            raise ValueError("claims reminder days must be 1 to 9 (claims are due by the 10th)")
        return sorted(set(v))

    @field_validator("outcome_chase_days")
    @classmethod
    def _chase(cls, v):
        if not v or any(d < 1 for d in v):
            raise ValueError("give at least one number of days, e.g. [28, 42]")
        return sorted(set(v))


class DigestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    time: str = "08:00"                      # daily on working days, London time
    monthly_day: int = Field(11, ge=1, le=28)
    chart: bool = True                       # the 12-month chart (PNG) in the monthly digest

    @field_validator("time")
    @classmethod
    def _time(cls, v):
        return _clock(v)


class ImskSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    triage_team: str = ""            # accepted referrals go here, with their triage deadline
    service_lead: str = ""           # overdue triage is escalated here
    triage_working_days: int = Field(2, ge=1)
    routine_weeks: int = Field(5, ge=1)        # first appointment after receipt
    transfer_weeks: int = Field(3, ge=1)       # after the last appointment, between disciplines
    self_referral_months: int = Field(2, ge=1)


class TrainingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    panel: str = ""                  # the commissioner's panel: complete applications go here


class SchedulerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    # A job missed while lesbot was down runs once at start if it is no older than this.
    grace_hours: float = Field(12, gt=0)

