"""Definitions: from the YAML files of a services directory to valid Services.

Owns the schema (every key declared once: schema; the value types: values; service names and
placeholders: names), how each key is read (reader, and by what the key is about: program_keys,
lifecycle_keys, initd_keys), the safe YAML loader (yamlload), drop-ins (dropins), the build of one
Service (build), the catalog of a whole directory (catalog), the cache of validated definitions
(cache), $VARIABLE expansion (expansion), the fingerprint of the files a service was started from
(fingerprint), and the generated key reference (schema_doc).

May import: the base and files. Never a process, a record or a command.
"""
