"""The one exception family of servicectl and the LSB exit codes it maps to.

Every failure raised by the core is a ServicectlError: a message for people and an exit code.
"""

from __future__ import annotations


class Exit:
    """LSB exit codes for actions (``status`` has its own: StatusCode). Plain ints: an IntEnum
    would import enum (and with it functools and more, 2-3 ms) into every command."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    UNIMPLEMENTED = 3
    PRIVILEGE = 4
    NOT_INSTALLED = 5
    NOT_CONFIGURED = 6
    NOT_RUNNING = 7


class StatusCode:
    """LSB exit codes for ``status``."""

    RUNNING = 0
    DEAD = 1
    STOPPED = 3
    UNKNOWN = 4


class ServicectlError(Exception):
    """A failure explained for people: what happened, to which service, and what to do."""

    exit_code: int = Exit.FAILURE

    def __init__(self, message: str, *, exit_code: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail  # extra lines (a log tail), printed indented after the message
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(ServicectlError):
    """A service definition is broken. The message names the file and the key."""

    exit_code = Exit.NOT_CONFIGURED

    def __init__(self, file: str, key: str | None, problem: str) -> None:
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(where + problem)
        self.file = file
        self.key = key
        self.problem = problem

    def __reduce__(self) -> tuple[type, tuple[str, str | None, str]]:
        return (type(self), (self.file, self.key, self.problem))


class UntrustedError(ConfigError):
    """As root, a definition (or drop-in) another user could have written: not used (exit 4).
    See docs/security.md R-DEF-2."""

    exit_code = Exit.PRIVILEGE


class UnknownServiceError(ServicectlError):
    """No definition with that name."""

    exit_code = Exit.NOT_INSTALLED


class NotInstalledError(ServicectlError):
    """The service's program is missing or not executable."""

    exit_code = Exit.NOT_INSTALLED


class PrivilegeError(ServicectlError):
    """The action needs privileges servicectl does not have."""

    exit_code = Exit.PRIVILEGE


class EnvironmentProblem(ServicectlError):
    """The machine is not in a state servicectl can work in (a directory, a user...)."""

    exit_code = Exit.FAILURE


class Interrupted(KeyboardInterrupt):
    """servicectl was interrupted (Ctrl-C, SIGTERM) in the middle of an action on a service.

    A KeyboardInterrupt, so that it still ends everything under way; ``message`` says in which
    state the service was left and what to do next.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
