"""Training workflows: one dispatcher and one short recipe per stage."""
