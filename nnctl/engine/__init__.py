"""The training engine: typed loop state, the one copy of the step mechanics, and the compiled loop.

Floors: `state` (pytrees) <- `step` (forward, update, commit) <- `loop` (epochs, evaluation, early stopping,
records) <- `compiled` (the jitted pieces each fit strategy calls). Objectives (nnctl.objectives) sit on `step`;
nothing here knows which model kind it trains."""
