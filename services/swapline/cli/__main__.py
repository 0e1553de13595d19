import sys

from swapline.cli import main

sys.exit(main())
