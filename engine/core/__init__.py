"""The core: deal commands, rule-set versions, evaluation and recording, ticks and timers, queries.

Every change from any door (builder, CLI, simulator, service) goes through ``Conveyor`` here, so
rules fire the same way whichever door a change came through.
"""
