"""The rule that makes the playground public or sign-in only (adapters/web/signin/access.py)."""
import pytest

from adapters.web.signin.access import decide_playground_access, is_loopback


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1:8000", True), ("127.0.0.2:8000", True), ("[::1]:8000", True), ("localhost:8000", True),
    ("0.0.0.0:8000", False), ("[::]:8000", False), ("192.168.1.10:8000", False), ("docrag.example:80", False),
    ("unix:/run/docrag.sock", False), ("", False),
])
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


def decide(public=None, listen=("127.0.0.1:8000",), providers=(), proxies=0):
    return decide_playground_access(public, listen=listen, providers=providers, trusted_proxies=proxies)


def test_a_fresh_machine_serves_a_public_playground_on_loopback():
    assert decide().public


@pytest.mark.parametrize("case", [
    dict(listen=("0.0.0.0:8000",)),  # PORT set, or --host 0.0.0.0
    dict(listen=("127.0.0.1:8000", "0.0.0.0:9000")),
    dict(listen=()),  # served by something that did not say where it listens
    dict(proxies=1),  # a reverse proxy on this machine forwards the world to loopback
    dict(providers=("slack",)),  # sign-in was configured: people are meant to sign in
])
def test_anything_beyond_that_needs_sign_in(case):
    access = decide(**case)
    assert not access.public and access.reason


def test_the_operator_setting_wins_either_way():
    assert decide(public=True, listen=("0.0.0.0:8000",), providers=("slack",)).public
    assert not decide(public=False).public
