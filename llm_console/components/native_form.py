"""A plain HTML form that really posts to a backend route (Reflex's forms always prevent the default).

Sign-in and sign-out must be full-page POSTs so the backend can set or clear the httpOnly cookie
and the websocket reconnects with the new cookie.
"""

from __future__ import annotations

from reflex_base.components.component import field
from reflex_base.vars.base import Var
from reflex_components_core.el.elements.forms import BaseHTML


class NativeForm(BaseHTML):
    tag = "form"

    action: Var[str] = field(doc="The backend route the browser posts to")
    method: Var[str] = field(doc="HTTP method")


native_form = NativeForm.create
