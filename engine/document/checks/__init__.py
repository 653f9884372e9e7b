"""The validator's checks, one module per concern; ``engine.document.validate`` runs them in order.

``reading``: JSON text, size, values every backend stores alike. ``shape``: keys and JSON types,
the condition tree read into its model, the well-formed rest of a malformed document.
``semantics``: names against business-rules' declarations, values, references, templates.
``patterns``: regular expressions under RE2.
"""
