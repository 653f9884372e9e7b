"""What rules read and do: the variables and actions declared to business-rules, and the evaluators."""
