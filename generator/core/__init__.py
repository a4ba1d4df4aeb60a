"""The data model and the exact maths problems share: quantities, draws, worked steps, readings, the registry."""
