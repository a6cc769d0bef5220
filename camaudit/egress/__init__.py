"""Egress verification: is the camera network really closed? (DESIGN.md section 5)

Modules: ``wire`` and ``dns`` (pure wire formats), ``active``/``gateway``/``check`` (the prober),
``listener`` (the cooperating listener), ``passive`` (captures), ``verdict`` (pure decision
logic), ``results`` (the evidence model), ``schema``/``storage`` (the store), ``run`` (run,
judge and record). Importing this package imports none of them: store.py imports ``schema``.
"""
