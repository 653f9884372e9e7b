"""The outbox: the dispatcher that carries out recorded actions, their effects and the providers."""
