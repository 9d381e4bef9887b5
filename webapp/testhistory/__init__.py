"""A test's history across runs (issue 12, part 2). Placeholder in the results branch: the history part's
real package replaces it at merge."""
