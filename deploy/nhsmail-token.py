#!/usr/bin/env python3
"""Print an OAuth2 access token for Exchange Online (NHSmail), for lesbot's
imap.oauth2_token_command / relay.oauth2_token_command.

Needs `pip install msal` and an app registration approved for the NHSmail tenant
(client-credentials flow; the app must be granted access to the shared mailbox).
Settings come from the environment so no secret is written in lesbot.toml:
  LESBOT_OAUTH_TENANT, LESBOT_OAUTH_CLIENT_ID, LESBOT_OAUTH_CLIENT_SECRET
"""
import os
import sys

import msal

app = msal.ConfidentialClientApplication(
    os.environ["LESBOT_OAUTH_CLIENT_ID"],
    authority=f"https://login.microsoftonline.com/{os.environ['LESBOT_OAUTH_TENANT']}",
    client_credential=os.environ["LESBOT_OAUTH_CLIENT_SECRET"],
)
# msal caches the token in memory only; lesbot runs this command each time it logs in.
result = app.acquire_token_for_client(scopes=["https://outlook.office365.com/.default"])
if "access_token" not in result:
    sys.exit(f"no token: {result.get('error')}: {result.get('error_description')}")
print(result["access_token"])
