"""Plain domain classes and their rules: no Flask, no SQL."""
