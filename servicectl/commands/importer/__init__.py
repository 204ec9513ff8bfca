"""import: an init.d script or a systemd unit turned into a definition (main), read by the
shell reader (shell, words), the init.d readers (initd, initd_map, initd_verbs), the unit
reader (unit, unit_parse), with the draft they fill (draft, commands) and its emission (emit).

May import: what servicectl.commands may.
"""
