"""OAuth2 for NHSmail (Exchange Online): get an access token by running a command.

lesbot does not hold refresh tokens itself: the operator's command (e.g. a small
msal script, or `az account get-access-token`) prints a current token.
"""
from __future__ import annotations

import shlex
import subprocess


class TokenError(RuntimeError):
    pass


def token_from_command(command: str, timeout: float = 60) -> str:
    try:
        r = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TokenError(f"oauth2 token command failed: {e}") from None
    token = r.stdout.strip()
    if r.returncode != 0 or not token:
        raise TokenError(f"oauth2 token command exited {r.returncode}: {r.stderr.strip()[-200:]}")
    return token


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"
