"""The teaching room: derivations (explain), one step number by number (trace), diagnoses, exercises."""
