"""`make bench`'s tool: both analyses timed against the plain pandas approach on synthetic
dumps. Run it as `python tests/bench` (see __main__.py); each module is one part of it."""
