"""The search: the loop, the final phase, feedback, ICPL ranking, CARD screening and vision judges."""
