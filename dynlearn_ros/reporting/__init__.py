"""Tables and plots of results (no torch): every markdown table is drawn with
:func:`markdown.md_table` and written next to its JSON with :func:`markdown.write_outputs`;
the result tables of the learning commands are laid out in :mod:`tables`, figures in
:mod:`plots` (matplotlib, imported only there)."""
