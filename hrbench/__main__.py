"""``python -m hrbench ARGS`` = ``hrbench ARGS`` (the form ``torchrun ... -m hrbench train ...`` needs)."""

import sys

from hrbench.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
