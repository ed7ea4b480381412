"""Sign-in for the web UI (docs/signing-in.md). What other blueprints use:

- :func:`require_viewer` (a view decorator; ``public_ok=True`` also admits anonymous visitors of a
  public playground) and :func:`viewer_refusal` (the same as a ``before_request`` hook);
- :func:`current_viewer` -> :class:`Viewer` (``.collections``, ``.can_see(name)``, ``.csrf``);
- :func:`csrf_refusal` for a POST handler, with ``viewer.csrf`` in the form as ``csrf_token``.
"""
from adapters.web.signin.access import PlaygroundAccess, decide_playground_access, is_loopback
from adapters.web.signin.blueprint import signin_blueprint
from adapters.web.signin.service import SignIn
from adapters.web.signin.viewer import (
    Viewer,
    csrf_refusal,
    current_viewer,
    require_viewer,
    viewer_collections,
    viewer_refusal,
)

__all__ = [
    "PlaygroundAccess", "SignIn", "Viewer", "csrf_refusal", "current_viewer", "decide_playground_access",
    "is_loopback", "require_viewer", "signin_blueprint", "viewer_collections", "viewer_refusal",
]
