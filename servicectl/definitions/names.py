"""Service names: what a definition's name may be, templates (``NAME@.yaml``) and their
instances (``NAME@INSTANCE``, docs/security.md R-INST-1), and the placeholders (``{run_dir}``,
``{instance}``...) a definition's paths and commands may use.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.paths import Dirs


# Checked with sets of ASCII characters, not regular expressions: every command checks a name,
# and ``re`` (with enum, which it imports) costs a command 3-6 ms to import.
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
NAME_CHARS = _ALNUM | frozenset("_.@-")


def plain_name(name: str) -> bool:
    """A file stem that names a service: letters, digits, ``_ . @ -``, at least one."""
    return bool(name) and NAME_CHARS.issuperset(name)


# The INSTANCE of NAME@INSTANCE (docs/security.md R-INST-1): never "." or "..", nor anything
# starting with "." (a path component {instance} would turn into the directory above) or "-"
# (an option, once in a command line) but "-" alone (no option: postfix's default instance).
_INSTANCE_FIRST = _ALNUM | frozenset("_:")
_INSTANCE_REST = _INSTANCE_FIRST | frozenset(".-")


def valid_instance(instance: str) -> bool:
    """An INSTANCE: ``-`` alone, or letters, digits, ``_ : . -`` not starting with ``.``/``-``."""
    if instance == "-":
        return True
    return bool(instance) and instance[0] in _INSTANCE_FIRST and _INSTANCE_REST.issuperset(instance)


PLACEHOLDERS = ("run_dir", "log_dir", "services_dir", "name", "instance", "prefix")


INSTANCE_CHARS = "letters, digits, -, _, ., :, not starting with . or - (but - alone)"


SAMPLE_INSTANCE = "1"  # what a template is checked with on its own (valid as a port and a name)


def expand(value: str, name: str, dirs: Dirs, instance: str | None = None) -> str:
    """Replace {run_dir}, {log_dir}, {services_dir} and {name} (for an instance, the whole
    NAME@INSTANCE), and for an instance {instance} and {prefix} (NAME); other braces stay as
    they are."""
    values = {
        "run_dir": str(dirs.run),
        "log_dir": str(dirs.log),
        "services_dir": str(dirs.services),
        "name": name,
    }
    if instance is not None:
        values["instance"] = instance
        values["prefix"] = name.partition("@")[0]
    if "{" not in value:
        return value
    import re

    pattern = r"\{(" + "|".join(PLACEHOLDERS) + r")\}"
    return re.sub(pattern, lambda m: values.get(m.group(1), m.group(0)), value)


def is_template(stem: str) -> bool:
    """Whether a definition file's stem names a template: ``NAME@``."""
    return len(stem) > 1 and stem.endswith("@") and stem.count("@") == 1


def split_instance(name: str) -> tuple[str, str] | None:
    """``memcached@11211`` to (``memcached@``, ``11211``): the template's stem and the
    instance; None when ``name`` is not NAME@INSTANCE with a valid INSTANCE."""
    prefix, at, instance = name.partition("@")
    if not at or not prefix or not valid_instance(instance):
        return None
    return prefix + "@", instance


def valid_name(name: str) -> bool:
    """A service name: a file stem (plain_name), or NAME@INSTANCE (INSTANCE may hold a colon)."""
    return plain_name(name) or split_instance(name) is not None
