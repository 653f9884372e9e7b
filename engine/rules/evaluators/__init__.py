"""Three evaluators that decide alike: ``reference`` (business-rules' own ``run_all``), ``compiled``
(closures, used on every change and tick) and ``vectorized`` (pandas masks over many deals).

The equivalence tests hold them to the same decisions; ``reference`` is the definition.
"""
