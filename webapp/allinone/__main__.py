"""``python -m webapp.allinone`` (what ``make run`` executes): see the package's docstring."""
import sys

from webapp.allinone.supervisor import main

if __name__ == "__main__":
    sys.exit(main())
