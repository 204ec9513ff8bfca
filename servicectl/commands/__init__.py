"""The commands: the table of every command and option, declared once (grammar, with its
page in docs/commands.md: grammar_doc), resolving NAME arguments to valid Services (resolve),
running a decided command line (dispatch) and each command's body: control (start, stop,
restart, reload, startall, stopall), views (status, list), check, generate (initd, unit),
actions, logs, editing (enable, disable, cat, edit), boot (the fleet's boot files), shims
(init.d scripts and units of one service) and importer (import).

May import: everything below (base to output); never the entry (servicectl.cli).
"""
