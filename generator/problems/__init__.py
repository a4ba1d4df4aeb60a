"""Problem types, one module each; the module's name is the type's name.

A module here is found by name (no list to edit) unless its name starts with "_". It defines:

- TITLE: the heading printed on the sheet;
- OPTIONS: a list of registry.Option (accepted values as strings, and a default);
- CONTRACT: a problem.Contract (bounds on givens, intermediates, answers; forbidden draws);
- generate(rng, options) -> problem.Problem, built with problem.draft(...).

Optionally CHAINED = True for a multi-part worksheet whose later parts use earlier results.
Its statement is the template fragment templates/problems/<name>.tex.j2.
"""
