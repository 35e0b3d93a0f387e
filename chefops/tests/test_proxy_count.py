"""The client IP behind the router (issue 16): staging and production refuse NUM_PROXIES=0
unless NO_REVERSE_PROXY=true says no proxy stands in front. (With NUM_PROXIES=1, the
Railway configuration, the login throttle counts each client apart:
companies/tests/test_throttling.py.)"""

from __future__ import annotations

import subprocess

import pytest

from chefops.testing.settings_probe import REQUIRED_IN_PRODUCTION, django_setup

_PRINT = "from rest_framework.settings import api_settings; print(api_settings.NUM_PROXIES)"


def _start(overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return django_setup(overrides, _PRINT, without={"NUM_PROXIES"})


@pytest.mark.parametrize("django_env", ["production", "staging"])
def test_production_like_refuses_no_proxy_count_without_the_opt_out(django_env: str) -> None:
    base = {**REQUIRED_IN_PRODUCTION, "DJANGO_ENV": django_env}
    del base["NUM_PROXIES"]
    for unset_or_zero in ({}, {"NUM_PROXIES": "0"}):
        refused = _start({**base, **unset_or_zero})
        assert refused.returncode != 0
        assert f"DJANGO_ENV={django_env} refuses to start with NUM_PROXIES=0" in refused.stderr
        assert "NO_REVERSE_PROXY=true" in refused.stderr

    behind_railway = _start({**base, "NUM_PROXIES": "1"})
    assert behind_railway.returncode == 0, behind_railway.stderr
    assert behind_railway.stdout.split() == ["1"]

    direct = _start({**base, "NO_REVERSE_PROXY": "true"})
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.split() == ["0"]


def test_contradictory_or_negative_proxy_settings_are_refused() -> None:
    both = _start({"DJANGO_ENV": "development", "NUM_PROXIES": "1", "NO_REVERSE_PROXY": "true"})
    assert both.returncode != 0
    assert "NO_REVERSE_PROXY=true contradicts NUM_PROXIES=1" in both.stderr
    negative = _start({"DJANGO_ENV": "development", "NUM_PROXIES": "-1"})
    assert negative.returncode != 0
    assert "NUM_PROXIES must be 0 or more" in negative.stderr


def test_development_keeps_the_zero_default() -> None:
    started = _start({"DJANGO_ENV": "development"})
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["0"]
