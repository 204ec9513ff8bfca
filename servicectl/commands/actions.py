"""``servicectl action NAME VERB``: a service's extra verbs (``actions``), like an init.d
script's ``rotate`` or ``upgrade``.

What an action does: servicectl/service/action.py; for a supervised service, its supervisor
does it (servicectl/supervisor/route.py).
"""

from __future__ import annotations

from servicectl.errors import Exit, ServicectlError
from servicectl.output.face import face


def command(name: str, verb: str) -> int:
    """The body of ``action``: one service, one verb."""
    from servicectl.commands import resolve

    [name] = resolve.requested_names([name])
    catalog = resolve.catalog_for([name])
    known, code = resolve.known_names(catalog, [name], Exit.NOT_INSTALLED)
    valid, bad = resolve.valid_names(catalog, known)
    if not valid:
        return max(code, bad)
    from servicectl.supervisor import route

    svc = catalog.services[name]
    try:
        with resolve.explained_interrupt():
            outcome = route.action(svc, catalog.dirs, verb)
    except ServicectlError as exc:
        face.error(exc.message, exc.detail)
        return int(exc.exit_code)
    face.outcome(outcome)
    return outcome.code
