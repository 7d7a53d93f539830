"""Fixtures of the modules that talk to the SAS receiver: `pki`, `sas`, and an autouse one
keeping requests' CA variables out of the way.

Import the functions in the test module (`from tests.support.sas_fixtures import
pki_fixture, sas_ca_bundle_only, sas_fixture  # noqa: F401`): pytest finds fixtures in a
module's namespace, and the functions, named apart from their fixtures, are not shadowed by
test arguments.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.pki import Pki, make_pki
from tests.support.receiver import SasReceiver
from tests.support.sas_agenda import CA_OVERRIDES


@pytest.fixture(scope="module", name="pki")
def pki_fixture(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def sas_ca_bundle_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables override a Session's `verify`, hence the SAS CA bundle
    # (app bug, see test_sas_ca_bundle_wins_over_requests_ca_bundle): unset them here.
    for name in CA_OVERRIDES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(name="sas")
def sas_fixture(pki: Pki) -> Iterator[SasReceiver]:
    with SasReceiver(pki) as receiver:
        yield receiver
