"""Three evaluators that decide alike; ``reference`` is the definition, the others are held to it.

The interface, once for all three:

- **Input**: a *validated* ``RuleSet`` (``engine.document.validate``; nothing else may reach
  business-rules), a deal and an instant ``now`` (the injected clock's, never read here). A deal is
  a ``DealState`` or an ORM ``Deal`` — anything with the attributes the variable registry
  (``engine.rules.registry``) names — or, for ``vectorized``, a frame of such rows (``deals_frame``).
- **Variables** come from the one registry: ``reference`` calls business-rules' declarations that
  ``engine.rules.variables`` generates from it, ``compiled`` its readers, ``vectorized`` one column
  per registry source. Conditions are walked by ``engine.document.conditions.Visitor``.
- **Output**: for each *enabled* rule whose conditions hold, a ``Decision`` (the rule, its
  occurrence key under the repeat policy, the values it read, its planned actions, ``due_at``).
  ``skip`` holds ``(rule id, occurrence)`` pairs already fired: those are left out. ``vectorized``
  answers the bulk question instead — one boolean mask per enabled rule, repeat policies not applied.
- **Purity**: nothing touches the database or the clock; the same call can be re-run safely.

The three:

- ``reference.evaluate(ruleset, deal, now, skip)`` and ``reference.trace`` (the dry run's "why"):
  business-rules' own ``check_conditions_recursively`` on the rule's JSON.
- ``compiled.compile_ruleset(ruleset).evaluate(deal, now, skip)``: closures, used on every change and
  tick; also ``matching`` and ``next_due`` (when a time condition can next turn true).
- ``vectorized.rule_masks(ruleset, frame, now)`` / ``match_counts``: numpy masks over many deals.

``numeric`` states business-rules' epsilon arithmetic once, for ``compiled`` and ``vectorized``
alike. ``base.Evaluator`` is the per-deal protocol (``CompiledRuleSet`` satisfies it); the equivalence
tests (tests/core/test_run_all_equivalence.py, test_evaluators_agree.py) hold all three to the same
decisions.
"""

from engine.rules.evaluators.base import Decision, Evaluator, due_time, occurrence

__all__ = ["Decision", "Evaluator", "due_time", "occurrence"]
