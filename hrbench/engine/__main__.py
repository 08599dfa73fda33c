"""``python -m hrbench.engine ARGS`` = ``hrbench ARGS``; the form ``torchrun -m hrbench.engine train ...`` needs."""

import sys

from hrbench.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
