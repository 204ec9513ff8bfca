"""The commands: the table of every command and option, declared once (grammar, the meaning
of each command's exit codes: exits, with its page in docs/commands.md: grammar_doc),
resolving NAME arguments to valid Services (resolve), running a decided command line
(dispatch) and each command's body: control (start, stop, restart, reload, startall,
stopall), views (status, list), check (with programs: the program found as start finds it),
generate (initd, unit), actions, logs (with logtimes: --since), metrics (the Prometheus text
format), editing (enable, disable, cat, edit), boot (the fleet's boot files), shims (init.d
scripts and units of one service) and importer (import).

May import: everything below (base to output); never the entry (servicectl.cli).
"""
