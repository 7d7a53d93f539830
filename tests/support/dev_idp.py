"""A real OpenID Connect provider standing in for Pro Santé Connect: the npm package
oidc-provider (OpenID Certified), run by scripts/dev_idp.mjs in a node subprocess, with
identities carrying PSC's claim names. `make node-tools` installs it in .tools/.

`DevIdp(accounts, redirect_base)` serves on a free port of 127.0.0.1; `sign_in(session,
authorize_url, login)` plays a browser at its login page (requests), up to the redirect
back to the client with the code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from tests.support.live_server import _die_with_parent, stop_group
from tests.support.postgres import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "dev_idp.mjs"
PACKAGE = REPO_ROOT / ".tools" / "node_modules" / "oidc-provider"
CLIENT_ID, CLIENT_SECRET = "fhir-agenda-test", "test-client-secret"
ACTION_RE = re.compile(r'<form method="post" action="([^"]+)"')

Claims = dict[str, Any]


def psc_identity(national_id: str, family: str = "LORIDON", given: str = "Sébastien",
                 **extra: Any) -> Claims:
    """Claims shaped as Pro Santé Connect's UserInfo (see the README's PSC notes)."""
    return {"sub": f"f:test:{national_id}", "SubjectNameID": national_id,
            "preferred_username": national_id, "given_name": given, "family_name": family,
            "codeCivilite": "M", "UITVersion": "1.0", "Acces_Regulation_Medicale": "VRAI",
            "Palier_Authentification": "APPPRIP3^1.2.250.1.213.1.5.1.1.1",
            "otherIds": [{"identifiant": national_id[1:], "origine": "RPPS", "qualite": 1}],
            "SubjectRefPro": {"exercices": [{"codeProfession": "10",
                                             "nomDexercice": family,
                                             "prenomDexercice": given}]}, **extra}


def require_node_provider() -> None:
    if shutil.which("node") is None or not PACKAGE.is_dir():
        pytest.fail("The OpenID Connect test provider needs node and oidc-provider: run "
                    "`make node-tools`", pytrace=False)


class DevIdp:
    def __init__(self, accounts: dict[str, Claims], client_base: str, log_path: Path) -> None:
        self.accounts, self.client_base, self.log_path = accounts, client_base.rstrip("/"), log_path
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def settings(self) -> dict[str, str]:
        """What the application needs to use this provider (Settings overrides)."""
        return {"oidc_discovery_url": self.discovery_url, "oidc_client_id": CLIENT_ID,
                "oidc_client_secret": CLIENT_SECRET,
                "oidc_provider_name": "Pro Santé Connect (test)"}

    def environment(self) -> dict[str, str]:
        """The same, as the environment of a server process."""
        return {"OIDC_DISCOVERY_URL": self.discovery_url, "OIDC_CLIENT_ID": CLIENT_ID,
                "OIDC_CLIENT_SECRET": CLIENT_SECRET,
                "OIDC_PROVIDER_NAME": "Pro Santé Connect (test)"}

    def start(self) -> DevIdp:
        require_node_provider()
        accounts_file = self.log_path.with_suffix(".accounts.json")
        accounts_file.write_text(json.dumps(self.accounts))
        env = dict(os.environ, DEV_IDP_PORT=str(self.port), DEV_IDP_ACCOUNTS=str(accounts_file),
                   DEV_IDP_CLIENT_ID=CLIENT_ID, DEV_IDP_CLIENT_SECRET=CLIENT_SECRET,
                   DEV_IDP_REDIRECT_URIS=f"{self.client_base}/sso/retour",
                   DEV_IDP_POST_LOGOUT_URIS=f"{self.client_base}/deconnexion/terminee")
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                ["node", str(SCRIPT)], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the provider exited: {self.log_path.read_text()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.discovery_url, timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the provider did not start: {self.log_path.read_text()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_group(process, timeout=10)

    def __enter__(self) -> DevIdp:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def sign_in(self, browser: requests.Session, authorize_url: str,
                login: str | None) -> str:
        """Follow the provider's redirects from `authorize_url` (logging in as `login` when
        its login page shows up) to the redirect back to the client; that URL."""
        url: str = authorize_url
        for _ in range(10):
            if url.startswith(self.client_base):
                return url
            response = browser.get(url, allow_redirects=False)
            if response.status_code in (302, 303):
                url = urljoin(url, response.headers["Location"])
                continue
            action = ACTION_RE.search(response.text)
            if response.status_code != 200 or action is None or login is None:
                raise AssertionError(f"no login form at {url}: {response.status_code} "
                                     f"{response.text[:500]}")
            response = browser.post(urljoin(url, action.group(1)), data={"login": login},
                                    allow_redirects=False)
            url = urljoin(url, response.headers["Location"])
            login = None  # once
        raise AssertionError("too many redirects at the provider")
